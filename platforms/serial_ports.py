"""A board's serial port, found again after a reset: by USB serial number when its name changed on re-enumeration.

Only pyserial's port list is read; nothing here opens a port (which would move DTR/RTS).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from profiler.errors import LinkError


def list_serial_ports() -> list[Any]:
    """pyserial's port list (ListPortInfo objects)."""
    from serial.tools import list_ports

    return list(list_ports.comports())


def usb_serial_of(port: str, ports: Iterable[Any] | None = None) -> str | None:
    """The USB serial number of the device behind a port path, if pyserial knows it."""
    if "://" in port:
        return None
    real = os.path.realpath(port)
    for info in list_serial_ports() if ports is None else ports:
        if info.device in (port, real):
            return str(info.serial_number) if info.serial_number else None
    return None


def find_by_serial(serial_number: str, ports: Iterable[Any] | None = None) -> str | None:
    """The port path of the USB device with this serial number."""
    for info in list_serial_ports() if ports is None else ports:
        if info.serial_number == serial_number:
            return str(info.device)
    return None


def wait_for_port(port: str, usb_serial: str | None, timeout_s: float, poll_s: float = 0.1) -> str:
    """The board's port once it is back after a reset: by USB serial number when known (the name may change
    on re-enumeration), else the same path once it exists again."""
    if "://" in port:
        return port
    deadline = time.monotonic() + timeout_s
    while True:
        if usb_serial:
            found = find_by_serial(usb_serial)
            if found:
                return found
        elif os.path.exists(port):
            return port
        if time.monotonic() >= deadline:
            who = f"USB serial {usb_serial}" if usb_serial else port
            raise LinkError(f"the board ({who}) did not come back within {timeout_s:.0f} s after its reset; "
                            "replug it and check `tiny-profiler devices`")
        time.sleep(poll_s)
