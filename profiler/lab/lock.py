"""One board, one user: a lock per board, held for as long as a profiler uses it.

The lock is an `flock` on a small file under a runtime directory, keyed by
the board: the real path of a serial device (so `/dev/serial/by-id/...` and
`/dev/ttyACM0` are one board), or the host and port of a URL
(`rfc2217://lab-pi:4001`) with the host name resolved, so two spellings of one endpoint
are one lock. The file holds the holder's PID and command line,
so a second profiler can say who has the board. The kernel drops an `flock`
when its process dies, so the lock of a crashed or killed profiler is stale
the moment it dies and the next profiler takes it over (and says so). The
file itself stays: unlinking a lock file lets two processes lock two inodes.

This works between processes on one host. Across hosts, a lab shares boards
through labgrid places (`--place`), which the coordinator hands out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from profiler.errors import BoardBusy, ConfigError

LOCK_DIR_ENV = "TINY_PROFILER_LOCK_DIR"


def lock_dir() -> Path:
    """$TINY_PROFILER_LOCK_DIR, else /run/lock/tiny-profiler (shared by every user), else the temp dir."""
    override = os.environ.get(LOCK_DIR_ENV)
    candidates = [Path(override)] if override else []
    if Path("/run/lock").is_dir() and os.access("/run/lock", os.W_OK):
        candidates.append(Path("/run/lock/tiny-profiler"))
    candidates.append(Path(tempfile.gettempdir()) / "tiny-profiler-locks")
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                directory.chmod(0o1777)  # every user of the lab host locks boards here
        except OSError:
            continue
        if os.access(directory, os.W_OK):
            return directory
    raise ConfigError(f"no writable directory for board locks ({', '.join(map(str, candidates))}); "
                      f"set {LOCK_DIR_ENV} to one")


def _endpoint_host(host: str) -> str:
    """One spelling per machine: every loopback name is `loopback`, a name is its first address."""
    host = host.lower().strip("[]")
    try:
        addresses = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except (OSError, UnicodeError):
        return host  # unresolvable now: its spelling is all we have (opening it will fail anyway)
    if all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        return "loopback"
    return addresses[0] if addresses else host


def board_key(port: str) -> str:
    """What identifies a board: the real path of a device, or the resolved host and port of a URL.

    `/dev/serial/by-id/...` and its `/dev/ttyACM0`, or `socket://localhost:4001` and
    `socket://127.0.0.1:4001`, are one board. The scheme does not count: socket:// and rfc2217://
    on one TCP port are one endpoint.
    """
    if "://" in port:
        parts = urlsplit(port)
        try:
            number = parts.port
        except ValueError:
            number = None
        return f"tcp://{_endpoint_host(parts.hostname or '')}:{number or ''}"
    return os.path.realpath(port)


def command_line() -> str:
    """This process's command, as a person would have typed it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("profiler/cli.py", "tiny-profiler")):
        argv[0] = "tiny-profiler"
    return shlex.join(argv) if argv else f"python (pid {os.getpid()})"


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a board's lock."""

    pid: int
    command: str
    since: str

    def describe(self) -> str:
        """`PID 1234 (tiny-profiler run ...) since 12:00:01`."""
        return f"PID {self.pid} ({self.command}) since {self.since}"


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
        return Holder(int(data["pid"]), str(data["command"]), str(data["since"])) if data else None
    except (ValueError, KeyError, TypeError):
        return None


class BoardLock:
    """An exclusive lock on one board; `release` (or the context manager) gives it back."""

    def __init__(self, key: str, path: Path, fd: int, stale: Holder | None) -> None:
        self.key = key
        self.path = path
        self.stale = stale  # the dead holder whose lock was taken over, if any
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, port: str, command: str | None = None) -> BoardLock:
        """Lock the board at `port`, or raise BoardBusy naming the holder."""
        key = board_key(port)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")[-60:]
        path = lock_dir() / f"{slug}.{hashlib.sha256(key.encode()).hexdigest()[:12]}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = holder.describe() if holder else "another process"
            shown = port.split("?", 1)[0]  # as the user spelled it; the key may be another spelling of it
            raise BoardBusy(f"board {shown} is in use by {who}; wait for it to finish or stop it "
                            f"(lock file {path})") from None
        # A holder that still holds the flock cannot reach this line; one written in the file without
        # the flock died (or was killed) without releasing: its lock is stale and now ours.
        previous = _read_holder(fd)
        stale = previous if previous is not None and previous.pid != os.getpid() else None
        me = json.dumps({"pid": os.getpid(), "command": command or command_line(),
                         "since": time.strftime("%Y-%m-%d %H:%M:%S"), "key": key})
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode("utf-8"), 0)
        return cls(key, path, fd, stale)

    @property
    def held(self) -> bool:
        """True until released."""
        return self._fd is not None

    def release(self) -> None:
        """Empty the file and drop the lock; safe to call twice."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor drops the flock

    def close(self) -> None:
        """Alias of `release`, so a lock can sit with other held resources."""
        self.release()

    def __enter__(self) -> BoardLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
