"""`tiny-profiler doctor` on this machine, and with tools taken off PATH: the real checks, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.processes import free_port


def _doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profiler.cli", "doctor", *args], capture_output=True, text=True,
                          env=env, check=False, timeout=120)


def test_doctor_passes_here_and_lists_every_area(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = _doctor({**os.environ, "TINY_PROFILER_PUSHGATEWAY": dead}, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["emulated_default_ready"] is True
    rows = report["checks"]
    assert {r["group"] for r in rows} == {"python", "stm32", "esp32", "riscv", "mps", "tools", "serial", "boards",
                                         "export", "files"}
    names = {r["name"] for r in rows}
    for expected in ("qemu-system-arm -M netduinoplus2 (stm32f405)", "qemu-system-riscv32 -M virt (riscv)",
                     "qemu-system-arm -M mps3-an547 (mps3-an547)",
                     "arm-none-eabi-gcc", "promtool", "pushgateway", "alertmanager", "ser2net", "labgrid-client",
                     "chromium (reports)", "dialout group", "udev rules for USB probes", "firmware cache",
                     "results directory", "pyserial"):
        assert expected in names, expected
    for row in rows:
        assert row["status"] in ("ok", "missing", "note")
        assert (row["status"] == "missing") == (row["fix"] is not None), row
    gateway = next(r for r in rows if r["name"] == "pushgateway" and r["group"] == "export")
    assert gateway["status"] == "missing" and dead in gateway["detail"] and not gateway["required"]


def test_doctor_without_qemu_names_the_package_and_exits_6(tmp_path: Path) -> None:
    # A PATH with the compiler and make but no QEMU: the emulated default cannot run.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("arm-none-eabi-gcc", "make"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    result = _doctor({**os.environ, "PATH": str(bin_dir)}, "--json")
    assert result.returncode == 6, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["checks"]}
    qemu = rows["qemu-system-arm -M netduinoplus2 (stm32f405)"]
    assert qemu["status"] == "missing" and qemu["required"]
    assert qemu["fix"] == "sudo apt-get install qemu-system-arm"
    assert rows["promtool"]["fix"] == "sudo apt-get install prometheus" and not rows["promtool"]["required"]
    table = _doctor({**os.environ, "PATH": str(bin_dir), "COLUMNS": "200"})
    assert table.returncode == 6
    assert "the emulated default cannot run" in table.stdout and "qemu-system-arm" in table.stdout
