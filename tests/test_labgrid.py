"""Scale-out through labgrid, all real and on loopback: labgrid's coordinator, an exporter that publishes an
emulated board's UART (it starts Debian's ser2net itself, as on a lab host), a place matched to it, and
`tiny-profiler run --place` acquiring, profiling over RFC2217 and releasing it.

labgrid lives in its own venv (`make lab-venv`, run by `make test`): it installs pyserial-labgrid over
pyserial's files, so the profiler drives it as users do, through its `labgrid-client` program.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import CLI
from tests.processes import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
LAB_BIN = Path(os.environ.get("TINY_PROFILER_LABGRID_BIN", ROOT / ".venv-lab" / "bin"))
PLACE = "emulated-f405"

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not (LAB_BIN / "labgrid-coordinator").exists(),
                       reason="labgrid is not installed; `make lab-venv` puts it in .venv-lab"),
    pytest.mark.skipif(shutil.which("ser2net") is None and not Path("/usr/sbin/ser2net").exists(),
                       reason="ser2net is not installed (Debian package ser2net; `make setup`)"),
]




def _env(coordinator: str) -> dict[str, str]:
    return {**os.environ, "LG_COORDINATOR": coordinator, "PATH": f"{LAB_BIN}{os.pathsep}{os.environ['PATH']}"}


def _client(coordinator: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(LAB_BIN / "labgrid-client"), "-x", coordinator, *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check:
        assert done.returncode == 0, f"labgrid-client {' '.join(args)}: {done.stderr}"
    return done


def _wait_for(what: str, predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A coordinator, an emulated STM32 on a pty, an exporter publishing it, and a place tagged device=stm32."""
    work = tmp_path_factory.mktemp("labgrid")
    port = free_port()
    coordinator = f"127.0.0.1:{port}"
    processes: list[subprocess.Popen[str]] = []
    try:
        processes.append(subprocess.Popen([str(LAB_BIN / "labgrid-coordinator"), "-l", coordinator], cwd=work,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True))
        _wait_for("the coordinator", lambda: _client(coordinator, "places", check=False).returncode == 0)

        board = subprocess.Popen([*CLI, "emulate", "--device", "stm32", "--model", "demo"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        processes.append(board)
        assert board.stdout is not None
        line = board.stdout.readline().strip()
        assert line.startswith("serial: /dev/pts/"), line

        config = work / "exporter.yaml"
        config.write_text(f"bench:\n  RawSerialPort:\n    port: {line.removeprefix('serial: ')}\n    speed: 115200\n")
        processes.append(subprocess.Popen(
            [str(LAB_BIN / "labgrid-exporter"), "-c", coordinator, "-n", "lab-host", "--hostname", "127.0.0.1",
             str(config)], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True,
            env=_env(coordinator)))
        _wait_for("the exported serial port",
                  lambda: "NetworkSerialPort" in _client(coordinator, "resources", check=False).stdout)

        _client(coordinator, "-p", PLACE, "create")
        _client(coordinator, "-p", PLACE, "add-match", "lab-host/bench/NetworkSerialPort")
        _client(coordinator, "-p", PLACE, "set-tags", "device=stm32")
        yield coordinator
    finally:
        for process in reversed(processes):
            stop(process)


def _acquired_by(coordinator: str) -> str:
    show = _client(coordinator, "-p", PLACE, "show").stdout
    (line,) = [x for x in show.splitlines() if x.strip().startswith("acquired:")]
    return line.split(":", 1)[1].strip()


def test_run_on_a_place_acquires_profiles_over_rfc2217_and_releases(lab: str, tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "run", "--place", PLACE, "--model", "demo", "--tokens", "8", "--repeat", "5",
                           "--out", str(tmp_path), "--json"], capture_output=True, text=True, timeout=300,
                          env=_env(lab))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "ok" and summary["valid"] and summary["decode_tokens_per_s"] > 0
    (path,) = [p for p in tmp_path.glob("*.jsonl") if not p.name.endswith(".trace.jsonl")]
    header = json.loads(path.read_text().splitlines()[0])
    assert header["board"] == "stm32f405" and header["serial_url"].startswith("rfc2217://127.0.0.1:")
    assert header["emulated"] is True  # a remote board, but its HELLO says it runs on QEMU
    assert _acquired_by(lab) == "None"  # released at teardown


def test_a_place_someone_holds_is_refused_in_one_line(lab: str, tmp_path: Path) -> None:
    _client(lab, "-p", PLACE, "acquire")
    try:
        done = subprocess.run([*CLI, "run", "--place", PLACE, "--model", "demo", "--tokens", "8", "--repeat", "5",
                               "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, env=_env(lab))
        assert done.returncode == 12, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert f"labgrid place {PLACE}" in line and "acquired" in line and "release" in line
        assert list(tmp_path.glob("*.jsonl")) == []
    finally:
        _client(lab, "-p", PLACE, "release")
    assert _acquired_by(lab) == "None"
