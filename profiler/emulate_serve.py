"""`tiny-profiler emulate`: an emulated board as a serial endpoint other tools open like hardware.

`run --emulate` starts QEMU for one session, with its UART on a socket QEMU
waits on before the CPU starts. Here the board runs on its own until stopped,
its UART on a pty (the default: ser2net, labgrid's RawSerialPort, picocom and
`run --port /dev/pts/N` open it like a USB-UART) or on a TCP server on
127.0.0.1 (`socket://`). Either way the board boots before anyone listens and
its boot HELLO is lost (QEMU drops a pty's output while nobody has it open);
the host asks again with HELLO_REQ, as it does on every real port.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO

from profiler.api import open_model, resolve_model_path
from profiler.emulator import (
    QemuSpec,
    die_with_parent,
    free_port,
    port_listening,
    qemu_command,
    reap,
    require_binary,
)
from profiler.errors import ConfigError, PlatformError
from profiler.lab.placement import place
from profiler.models.fit import check_fit

SERIAL_KINDS = ("pty", "socket")
_PTY_LINE = re.compile(r"char device redirected to (/dev/pts/\d+)")
_START_TIMEOUT_S = 10.0


@dataclass
class ServedBoard:
    """A running emulated board whose UART is a pty or a TCP server that does not wait for a client."""

    spec: QemuSpec
    serial: str = "pty"
    tcp_port: int | None = None
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    command: list[str] = field(default_factory=list)
    _log: IO[bytes] | None = None

    def start(self) -> ServedBoard:
        """Start QEMU and wait until its UART exists; `url` is then the pty path or socket:// URL."""
        binary = require_binary(self.spec.binary, self.spec.debian_package)
        if self.serial == "pty":
            chardev, port = "pty,id=uart0", 0
        else:
            port = self.tcp_port or free_port()
            chardev = f"socket,id=uart0,host=127.0.0.1,port={port},server=on,wait=off"
        self.command = qemu_command(self.spec, binary, port, chardev=chardev)
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=die_with_parent)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.serial == "pty":
                found = _PTY_LINE.search(self.output())
                if found:
                    self.url = found.group(1)
                    return self
            elif port_listening(port):
                self.url = f"socket://127.0.0.1:{port}"
                return self
            time.sleep(0.02)
        output = self.output().strip()
        self.close()
        raise PlatformError(f"QEMU did not start: {output.splitlines()[-1] if output else 'no output'}; "
                            f"command: {' '.join(self.command)}")

    def output(self) -> str:
        """What QEMU printed so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def wait(self) -> int:
        """Block until QEMU exits; its exit status."""
        assert self.process is not None
        return self.process.wait()

    def close(self) -> None:
        """Terminate and reap QEMU; safe to call twice."""
        if self.process is not None:
            reap(self.process)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def serve(device: str, model: str, serial: str = "pty", tcp_port: int | None = None) -> tuple[ServedBoard, str]:
    """Check board and model as `run` does, start the emulated board (the caller closes it), and say what runs."""
    if serial not in SERIAL_KINDS:
        raise ConfigError(f"--serial {serial!r} is not one of {', '.join(SERIAL_KINDS)}")
    placement = place(device, emulate=True)
    board, adapter = placement.board, placement.adapter
    path = resolve_model_path(model)
    tpm, handle = open_model(path)
    firmware = adapter.firmware(board)
    check_fit(handle.size_bytes, tpm.config, board.model_region_bytes, firmware.arena_total_bytes, board.name)
    spec = adapter.emulate(board, firmware.elf, path).spec
    served = ServedBoard(spec, serial, tcp_port).start()
    return served, (f"emulated {board.name} ({spec.binary} -M {spec.machine}), firmware {firmware.firmware_id}, "
                    f"model {handle.name} (crc32 {handle.crc32:08x}) on {served.url}; Ctrl-C stops it")
