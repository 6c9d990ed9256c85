"""Faults of the host around a real emulated run: stop signals, a disk that fills, outputs that can't be
written, bad options, and one board reached under two spellings.

Each test checks what the user gets: the exit code, one line on stderr with no traceback, a prompt end, and
a JSONL made of whole lines that ends with `error` + `summary` wherever a session started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI

pytestmark = pytest.mark.qemu
DEMO_RUN = ["run", "--device", "stm32", "--model", "demo", "--tokens", "32"]


def _session_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl"))


def _wait_for_tokens(out: Path, count: int, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in _session_files(out) if out.is_dir() else []:
            text = path.read_text()
            if text.count('"type": "token"') >= count:
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {count} tokens within {timeout_s} s")


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def _closed_with(path: Path, kind: str, status: str) -> list[dict]:  # type: ignore[type-arg]
    assert path.read_bytes().endswith(b"\n")
    records = read_jsonl(path)  # every line parses: no record was cut
    assert records[0]["type"] == "session"
    assert records[-2]["type"] == "error" and records[-2]["kind"] == kind, records[-2:]
    assert records[-1]["type"] == "summary" and records[-1]["status"] == status, records[-1]
    return records


def _emulators_of(url_or_path: str) -> bool:
    return subprocess.run(["pgrep", "-f", url_or_path], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("stop", [signal.SIGHUP, signal.SIGTERM])
def test_stop_signals_close_the_file_and_reap_qemu(stop: signal.Signals, tmp_path: Path,
                                                   firmware_image: object) -> None:
    proc = subprocess.Popen([*CLI, *DEMO_RUN, "--emulate", "--repeat", "50", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_tokens(tmp_path, 40, proc)
        proc.send_signal(stop)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert f"stopped by {stop.name}" in _one_line(stderr)
    (path,) = _session_files(tmp_path)
    records = _closed_with(path, "interrupted", "interrupted")
    assert not _emulators_of(records[0]["serial_url"].rsplit(":", 1)[1] + ",server=on")


@contextlib.contextmanager
def _tmpfs(where: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    where.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"needs root to mount a tmpfs (CI runs as root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(directory: Path) -> None:
    """Write until the file system says no space, as another process on a shared disk would."""
    with (directory / "filler").open("wb", buffering=0) as filler:
        chunk = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                filler.write(chunk)


def test_a_disk_that_fills_mid_run_keeps_whole_lines_and_says_why(tmp_path: Path, firmware_image: object) -> None:
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        out = disk / "results"
        proc = subprocess.Popen([*CLI, *DEMO_RUN, "--emulate", "--repeat", "50", "--out", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_tokens(out, 40, proc)
            _fill(disk)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        (path,) = _session_files(out)
        line = _one_line(stderr)
        assert proc.returncode == 13, stderr
        assert str(path) in line and "no space left" in line
        records = _closed_with(path, "results", "failed")
        assert records[-2]["exit_code"] == 13
        assert not list(out.glob(".*.reserve"))  # the reserve went back to the disk
        # Already full: refused before QEMU starts, and no empty file is left behind.
        again = subprocess.run([*CLI, *DEMO_RUN, "--emulate", "--out", str(out / "again")], capture_output=True,
                               text=True, timeout=60, check=False)
        assert again.returncode == 13 and "no space left" in _one_line(again.stderr)
        assert not (out / "again").exists() or not list((out / "again").glob("*.jsonl"))


def test_outputs_that_cannot_be_written_are_refused_before_launch(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    cases = [
        ([*DEMO_RUN, "--emulate", "--out", str(blocker / "results")], "--out"),
        ([*DEMO_RUN, "--emulate", "--out", str(tmp_path / "r"), "--log-file", str(blocker / "x.log")], "--log-file"),
        (["compare", str(blocker), "--plot", str(blocker / "p.png")], "--plot"),
        (["report", str(blocker), "-o", str(blocker / "report")], "--out"),
        (["devices", "--write-map", str(blocker / "map.toml")], "--write-map"),
        (["baseline", "accept", str(tmp_path), "--baselines", str(blocker / "baselines")], "--baselines"),
        (["model", "convert", str(blocker), "-o", str(blocker / "m.tpm")], "--output"),
    ]
    for args, option in cases:
        result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)
        line = _one_line(result.stderr)
        assert result.returncode == 13 and option in line and str(blocker) in line, result.stderr
    if os.geteuid() == 0:
        with _tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
            result = subprocess.run([*CLI, *DEMO_RUN, "--emulate", "--out", str(read_only / "results")],
                                    capture_output=True, text=True, timeout=60, check=False)
            assert result.returncode == 13 and "read-only" in _one_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--temperature", "-1"], 3, "--temperature -1.0 is not a finite number >= 0"),
        (["--temperature", "inf"], 3, "--temperature inf"),
        (["--port", "socket://127.0.0.1:99999", "--no-flash"], 3, "port from 1 to 65535"),
        (["--port", "socket://127.0.0.1", "--no-flash"], 3, "needs a host and a port"),
        (["--port", "socket://", "--no-flash"], 3, "needs a host and a port"),
        (["--port", "foo://board", "--no-flash"], 3, "unknown scheme foo://"),
        (["--metrics-port", "99999"], 3, "--metrics-port 99999 is not a TCP port"),
        (["--pushgateway", "ftp://x"], 3, "--pushgateway ftp://x is not an http(s) URL"),
        (["--prompt", "caf\udcff"], 3, "--prompt is not valid UTF-8"),
    ],
)
def test_bad_options_stop_before_anything_launches(args: list[str], code: int, needle: str, tmp_path: Path) -> None:
    argv = [*CLI, *DEMO_RUN, "--out", str(tmp_path / "out"), *args]
    env = dict(os.environ, TINY_PROFILER_CACHE=str(tmp_path / "no-cache"))  # a firmware build would show up here
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert result.returncode == code, result.stderr
    assert needle in _one_line(result.stderr) and "internal error" not in result.stderr
    assert time.monotonic() - started < 20
    assert not (tmp_path / "no-cache").exists() and not (tmp_path / "out").exists()  # no build, no file


def test_one_board_under_two_spellings_is_one_lock(tmp_path: Path, firmware_image: object,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINY_PROFILER_LOCK_DIR", str(tmp_path / "locks"))
    board = subprocess.Popen([*CLI, "emulate", "--device", "stm32", "--model", "demo", "--serial", "socket"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = None
    try:
        assert board.stdout is not None
        url = board.stdout.readline().split("serial: ", 1)[1].strip()
        tcp_port = url.rsplit(":", 1)[1]
        first = subprocess.Popen([*CLI, *DEMO_RUN, "--port", f"socket://localhost:{tcp_port}", "--no-flash",
                                  "--repeat", "30", "--out", str(tmp_path / "first")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_tokens(tmp_path / "first", 10, first)
        second = subprocess.run([*CLI, *DEMO_RUN, "--port", f"socket://127.0.0.1:{tcp_port}", "--no-flash",
                                 "--out", str(tmp_path / "second")], capture_output=True, text=True, timeout=60,
                                check=False)
        line = _one_line(second.stderr)
        assert second.returncode == 12 and f"PID {first.pid}" in line and f"localhost:{tcp_port}" in line
        assert not (tmp_path / "second").exists() or not _session_files(tmp_path / "second")
    finally:
        for proc in (first, board):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
