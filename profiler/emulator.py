"""QEMU launcher: runs our firmware as an emulated board with a loopback UART.

QEMU's `-icount shift=N` executes one instruction every 2**N ns of virtual
time, and every device timer counts virtual time. Device-timed figures are
therefore deterministic, and instructions can be read back from ticks:
`instructions = ticks / timer_hz * 1e9 / 2**N`.

The UART is a TCP server on 127.0.0.1 that waits for the profiler to connect
before the CPU starts, so the board's first bytes (its HELLO) are never lost.
The profiler opens it with pyserial's `serial_for_url`, the same path a real
serial port takes, as `qemu://127.0.0.1:PORT`: pyserial's socket port without
its 0.3 s pause on close (profiler/serial_urls/protocol_qemu.py).

A pty would need no such handler, but nothing can make QEMU wait for a pty's
reader: the board would say HELLO before pyserial opens the pty, and opening
flushes what arrived before. The TCP chardev's `wait=on` is the one start
signal QEMU offers that needs no second channel.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import serial

from profiler.errors import PlatformError, ToolMissing
from profiler.serial_urls.protocol_qemu import SCHEME

if "profiler.serial_urls" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("profiler.serial_urls")  # qemu:// for serial_for_url

DEFAULT_ICOUNT_SHIFT = 3
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class QemuSpec:
    """Everything needed to start one emulated board."""

    binary: str
    debian_package: str
    machine: str
    kernel: Path | None  # None: the machine boots from its flash drive, as a ROM bootloader would
    loads: tuple[tuple[Path, int], ...] = ()
    icount_shift: int | None = DEFAULT_ICOUNT_SHIFT  # None: no -icount (device time then follows the host)
    extra_args: tuple[str, ...] = ()
    flash_drive: Path | None = None  # a whole-flash image, attached as the machine's SPI flash (if=mtd)


def require_binary(binary: str, debian_package: str) -> str:
    """Return the path of `binary` or raise ToolMissing naming its Debian package."""
    found = shutil.which(binary)
    if found is None:
        raise ToolMissing(
            f"{binary} is not installed; install the Debian package {debian_package} "
            f"(sudo apt-get install {debian_package}) or run `make setup`"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """Ask Linux to kill QEMU if the profiler itself is killed (best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def qemu_command(spec: QemuSpec, binary_path: str, port: int, chardev: str | None = None) -> list[str]:
    """The QEMU argument list for `spec` with its UART on `port` (or on `chardev`, e.g. `pty,id=uart0`)."""
    args = [
        binary_path,
        "-M", spec.machine,
        "-display", "none",
        "-monitor", "none",
        "-chardev", chardev or f"socket,id=uart0,host=127.0.0.1,port={port},server=on,wait=on",
        "-serial", "chardev:uart0",
    ]
    if spec.kernel is not None:
        args += ["-kernel", str(spec.kernel)]
    if spec.flash_drive is not None:
        args += ["-drive", f"file={spec.flash_drive},if=mtd,format=raw"]
    if spec.icount_shift is not None:
        args += ["-icount", f"shift={spec.icount_shift},align=off,sleep=off"]
    for path, addr in spec.loads:
        args += ["-device", f"loader,file={path},addr=0x{addr:08x},force-raw=on"]
    args += list(spec.extra_args)
    # instrumentation only (benchmarks/kernels.py traces executed instructions with it; the wire fault tests
    # add a QMP monitor to reset the machine with its UART connection kept)
    args += shlex.split(os.environ.get("TINY_PROFILER_QEMU_ARGS", ""))
    return args


@dataclass
class QemuBoard:
    """A running emulated board; always reaped by `close` (or the context manager)."""

    spec: QemuSpec
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    command: list[str] = field(default_factory=list)
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """pyserial URL of the board's UART."""
        return f"{SCHEME}://127.0.0.1:{self.port}"

    def start(self) -> QemuBoard:
        """Start QEMU and wait until its UART socket listens."""
        binary_path = require_binary(self.spec.binary, self.spec.debian_package)
        for _attempt in range(3):
            self.port = free_port()
            self.command = qemu_command(self.spec, binary_path, self.port)
            self._log = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the profiler, which reaps QEMU itself
                preexec_fn=die_with_parent,
            )
            if self._wait_listening():
                return self
            output = self.output()
            self.close()
            if "Address already in use" not in output:
                raise PlatformError(
                    f"QEMU did not start: {output.strip().splitlines()[-1] if output.strip() else 'no output'}; "
                    f"command: {' '.join(self.command)}"
                )
        raise PlatformError("QEMU could not bind a loopback port three times; retry the run")

    def _wait_listening(self) -> bool:
        """Poll /proc for QEMU's listening socket: connecting would start the CPU early."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if port_listening(self.port):
                return True
            time.sleep(0.02)
        return False

    def output(self) -> str:
        """What QEMU printed so far (errors, warnings)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def alive(self) -> bool:
        """True while QEMU runs."""
        return self.process is not None and self.process.poll() is None

    def exit_reason(self, grace_s: float = 1.0) -> str | None:
        """Why QEMU ended (waiting up to `grace_s` for a dying process), or None if it runs."""
        if self.process is None:
            return "QEMU was closed"
        try:
            code = self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            return None
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        last = self.output().strip().splitlines()[-1:]
        return f"QEMU exited ({how})" + (f": {last[0]}" if last else "")

    def close(self) -> None:
        """Terminate and reap QEMU; safe to call twice."""
        if self.process is not None:
            reap(self.process)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> QemuBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def reap(process: subprocess.Popen[bytes]) -> None:
    """Terminate a QEMU process and wait for it; killed if it does not end within 5 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def port_listening(port: int) -> bool:
    """True when a TCP socket on 127.0.0.1:`port` is in LISTEN state (Linux /proc)."""
    wanted = f"0100007F:{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":
                return True
    return False


def instructions_from_ticks(ticks: int, timer_hz: int, icount_shift: int) -> float:
    """Instructions executed in `ticks` of an emulated board's timer under -icount."""
    return ticks / timer_hz * 1e9 / (1 << icount_shift)
