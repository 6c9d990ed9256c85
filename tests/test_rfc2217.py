"""An emulated board as a serial endpoint: `tiny-profiler emulate` on a pty, exported by Debian's ser2net
as RFC2217 on 127.0.0.1, profiled over `rfc2217://` exactly as a board on a lab host would be."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiler.api import RunOptions, plan_run
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI
from tests.processes import free_port, stop

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(shutil.which("ser2net") is None and not Path("/usr/sbin/ser2net").exists(),
                                 reason="ser2net is not installed (Debian package ser2net; `make setup`)")]
SER2NET = shutil.which("ser2net") or "/usr/sbin/ser2net"



def _listening(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")



@pytest.fixture(scope="module")
def emulated_pty() -> Iterator[str]:
    """`tiny-profiler emulate --device stm32 --model demo`: its one stdout line names the pty."""
    board = subprocess.Popen([*CLI, "emulate", "--device", "stm32", "--model", "demo"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert board.stdout is not None
        line = board.stdout.readline().strip()
        assert line.startswith("serial: /dev/pts/"), line + (board.stderr.read() if board.poll() is not None else "")
        yield line.removeprefix("serial: ")
    finally:
        stop(board)
    assert board.returncode == 0  # SIGTERM is the normal way to stop it


@pytest.fixture(scope="module")
def rfc2217_url(emulated_pty: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's ser2net (v4 YAML) exporting the pty as RFC2217 on 127.0.0.1, as a lab host exports a USB-UART."""
    port = free_port()
    config = tmp_path_factory.mktemp("ser2net") / "ser2net.yaml"
    config.write_text(f"""connection: &emulated-stm32
  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}
  connector: serialdev(nouucplock=true),{emulated_pty},115200n81,local
  options:
    kickolduser: false
""")
    server = subprocess.Popen([SER2NET, "-n", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        _listening(port)
        yield f"rfc2217://127.0.0.1:{port}"
    finally:
        stop(server)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "run", "--model", "demo", "--tokens", "32", "--repeat", "5", "--json", *args],
                          capture_output=True, text=True, check=False, timeout=300)


def test_rfc2217_through_ser2net_gives_the_device_timed_figures_of_a_direct_run(rfc2217_url: str,
                                                                                  tmp_path: Path) -> None:
    direct = _run("--device", "stm32", "--emulate", "--out", str(tmp_path / "direct"))
    remote = _run("--device", "stm32", "--port", rfc2217_url, "--out", str(tmp_path / "remote"))
    assert direct.returncode == 0, direct.stderr
    assert remote.returncode == 0, remote.stderr
    a, b = json.loads(direct.stdout), json.loads(remote.stdout)
    assert b["status"] == "ok" and b["reference_match"] is True and b["frames_lost"] == b["frames_corrupt"] == 0
    for key in ("decode_tokens_per_s", "prefill_tokens_per_s", "ttft_ms", "token_latency_ms_p95"):
        assert a[key] == b[key], key
    (path,) = [p for p in (tmp_path / "remote").glob("*.jsonl") if not p.name.endswith(".trace.jsonl")]
    records = read_jsonl(path)
    # Reached through a port, yet recorded as emulated: the board's HELLO says it runs on QEMU.
    assert records[0]["serial_url"] == rfc2217_url and records[0]["emulated"] is True
    assert not [r for r in records if r["type"] == "sample" and r.get("kind") == "temperature"]  # QEMU's ADC is noise
    flash = next(r for r in records if r["type"] == "phase" and r["name"] == "flash")
    assert flash["detail"]["skipped"] is True and "already holds demo" in flash["detail"]["reason"]


def test_a_second_run_on_a_held_port_is_refused_naming_the_holder(rfc2217_url: str, tmp_path: Path) -> None:
    session, _jsonl = plan_run(RunOptions(device="stm32", model="demo", port=rfc2217_url, tokens=8, repeat=5,
                                         out=tmp_path / "first"))
    try:
        second = _run("--device", "stm32", "--port", rfc2217_url, "--out", str(tmp_path / "second"))
        assert second.returncode == 12
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: board {rfc2217_url} is in use by PID ")
        assert "pytest" in lines[0] or "python" in lines[0]  # the holder's command line
        assert not (tmp_path / "second").exists()  # refused before any file
        summary = session.run()  # the holder itself is unaffected
        assert summary.status == "ok"
    finally:
        for held in session.holds:
            held.close()
    after = _run("--device", "stm32", "--port", rfc2217_url, "--tokens", "8", "--out", str(tmp_path / "third"))
    assert after.returncode == 0, after.stderr  # released at the end of the session


def test_a_board_holding_another_model_that_cannot_be_flashed_names_both_hashes(rfc2217_url: str,
                                                                                tmp_path: Path) -> None:
    from profiler.api import open_model
    from profiler.models.format import ModelConfig
    from profiler.models.random_model import make_random_model

    demo, demo_handle = open_model(Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm")
    other = tmp_path / "other.tpm"
    make_random_model(ModelConfig(dim=64, hidden_dim=172, n_layers=2, n_heads=8, n_kv_heads=4, vocab_size=512,
                                  seq_len=64, group_size=32, shared_classifier=True),
                      seed=3, tokenizer=demo.tokenizer).write(other)
    _, other_handle = open_model(other)
    result = subprocess.run([*CLI, "run", "--device", "stm32", "--port", rfc2217_url, "--model", str(other),
                             "--flasher", "openocd", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, check=False, timeout=120, env=_path_without("openocd"))
    assert result.returncode == 9, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"crc32 {demo_handle.crc32:08x}" in line and f"crc32 {other_handle.crc32:08x}" in line
    assert "could not be flashed" in line


def _path_without(program: str) -> dict[str, str]:
    import os

    found = shutil.which(program)
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if not found or Path(d) != Path(found).parent]
    return dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), *dirs]))
