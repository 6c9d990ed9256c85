"""One board, one user: the board lock between real processes, its holder line, stale locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profiler.errors import BoardBusy
from profiler.lab.lock import BoardLock, board_key

HOLDER = """
import sys, time
from profiler.lab.lock import BoardLock
lock = BoardLock.acquire(sys.argv[1], command="tiny-profiler run --port " + sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


@pytest.fixture(autouse=True)
def _lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINY_PROFILER_LOCK_DIR", str(tmp_path / "locks"))


def _holder(port: str, seconds: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, port, str(seconds)], stdout=subprocess.PIPE, text=True,
                             env=os.environ.copy())
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    return child


def test_a_second_process_is_refused_with_the_holders_pid_and_command(tmp_path: Path) -> None:
    child = _holder("rfc2217://Lab-Pi:4001", 30)
    try:
        with pytest.raises(BoardBusy) as refused:
            BoardLock.acquire("rfc2217://lab-pi:4001?ign_set_control")  # same board: host case and options ignored
        message = str(refused.value)
        assert f"PID {child.pid} (tiny-profiler run --port rfc2217://Lab-Pi:4001)" in message
        assert "\n" not in message and refused.value.exit_code == 12
        BoardLock.acquire("rfc2217://lab-pi:4002").release()  # another board is free
    finally:
        child.kill()
        child.wait()


def test_released_on_exit_and_a_killed_holders_lock_is_taken_over(tmp_path: Path) -> None:
    device = tmp_path / "ttyACM0"
    device.touch()
    by_id = tmp_path / "usb-board-if00"
    by_id.symlink_to(device)
    assert board_key(str(by_id)) == board_key(str(device))  # /dev/serial/by-id/... and its target are one board
    done = _holder(str(device), 0)
    done.wait(timeout=10)
    with BoardLock.acquire(str(by_id)) as lock:  # released on a normal exit: no stale holder
        assert lock.stale is None
    killed = _holder(str(device), 60)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    t0 = time.monotonic()
    lock = BoardLock.acquire(str(by_id))
    try:
        assert lock.stale is not None and lock.stale.pid == killed.pid  # the dead holder, named
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(BoardBusy, match=f"PID {os.getpid()}"):
            BoardLock.acquire(str(device))  # held here now, even against this same process
    finally:
        lock.release()
    assert lock.path.read_text() == ""  # a released lock names nobody
