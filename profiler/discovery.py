"""What is plugged in: serial ports (pyserial) and USB probes (pyusb), each with a board-family guess
from the board rows that list its USB bridge (platforms/boards.py).

Nothing here opens a port or a USB device, so looking never resets a board
(opening a tty moves DTR/RTS, which ESP32 boards wire to EN and IO0):
permissions come from `os.access` on the device node, a busy port from the
open file descriptors in /proc, USB strings from sysfs.
"""

from __future__ import annotations

import contextlib
import grp
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from platforms.boards import BOARDS
from platforms.serial_ports import list_serial_ports
from platforms.usb_bridges import UsbBridge

SYSFS_USB = Path("/sys/bus/usb/devices")


@dataclass(frozen=True)
class UsbKind:
    """A USB VID:PID we recognise (pid None: every product of the vendor), and the families of the board
    rows that list it."""

    vid: int
    pid: int | None
    name: str
    role: str  # uart | probe | probe+uart | dfu
    families: tuple[str, ...]
    reset_method: str | None = None  # the bridge decides how the board behind it is reset


def _known_usb() -> tuple[UsbKind, ...]:
    """Every USB bridge some board row lists (platforms/boards.py), with the families that list it."""
    families: dict[UsbBridge, list[str]] = {}
    for board in BOARDS:
        for bridge in board.usb_bridges:
            listed = families.setdefault(bridge, [])
            if board.family not in listed:
                listed.append(board.family)
    return tuple(UsbKind(b.vid, b.pid, b.name, b.role, tuple(f), b.reset_method) for b, f in families.items())


KNOWN_USB: tuple[UsbKind, ...] = _known_usb()


def identify(vid: int | None, pid: int | None) -> UsbKind | None:
    """The known kind of a USB VID:PID (an exact PID beats a vendor-wide entry)."""
    if vid is None:
        return None
    exact = [k for k in KNOWN_USB if k.vid == vid and k.pid == pid]
    vendor = [k for k in KNOWN_USB if k.vid == vid and k.pid is None]
    matches = exact or vendor
    return matches[0] if matches else None


@dataclass(frozen=True)
class Device:
    """One attached thing: a serial port, a USB probe or a DFU bootloader."""

    port: str | None
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str
    kind: str  # the recognised USB kind's name, or "serial port"
    role: str
    families: tuple[str, ...]
    status: str  # ok | busy | permission-denied
    fix: str | None = None

    @property
    def usb_id(self) -> str | None:
        """`vvvv:pppp`, or None for a port without USB identity."""
        return None if self.vid is None or self.pid is None else f"{self.vid:04x}:{self.pid:04x}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `tiny-profiler devices --json`."""
        data = asdict(self)
        data.pop("vid")
        data.pop("pid")
        data["usb"] = self.usb_id
        data["families"] = list(self.families)
        return data


def _holders(path: str) -> list[str]:
    """Other processes with `path` open, as 'pid (command)', from /proc (our own user's only unless root)."""
    target = os.path.realpath(path)
    found: list[str] = []
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()):
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        command = (proc / "comm").read_text().strip()
                        found.append(f"pid {proc.name} ({command})")
                        break
    return found


def port_status(path: str) -> tuple[str, str | None]:
    """ok, busy or permission-denied, with the fix for the last two."""
    if not os.access(path, os.R_OK | os.W_OK):
        try:
            group = grp.getgrgid(os.stat(path).st_gid).gr_name
        except (OSError, KeyError):
            group = "dialout"
        return "permission-denied", f"sudo usermod -aG {group} $USER, then log out and back in"
    holders = _holders(path)
    if holders:
        return "busy", f"in use by {', '.join(holders)}; close that program (a serial monitor?) first"
    return "ok", None


def udev_fix(vid: int, pid: int) -> str:
    """The udev rule that gives users access to a USB device (docs/hardware.md has the file)."""
    return (f'add SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vid:04x}", ATTR{{idProduct}}=="{pid:04x}", MODE="0666" '
            "to /etc/udev/rules.d/70-tiny-profiler.rules, run sudo udevadm control --reload && "
            "sudo udevadm trigger, then replug it")


def serial_devices(ports: Iterable[Any] | None = None,
                   status: Callable[[str], tuple[str, str | None]] = port_status) -> list[Device]:
    """Serial ports pyserial lists, with USB identity, family guess and status. Built-in UARTs with no USB
    identity (a PC's /dev/ttyS0) are left out: no board of ours hangs there, and `--port` still reaches one."""
    devices = []
    for info in list_serial_ports() if ports is None else ports:
        if info.vid is None and not re.search(r"tty(USB|ACM)", info.device):
            continue
        kind = identify(info.vid, info.pid)
        state, fix = status(info.device)
        description = info.description if info.description and info.description != "n/a" else info.device
        devices.append(Device(
            port=info.device, vid=info.vid, pid=info.pid, serial_number=info.serial_number or None,
            description=description, kind=kind.name if kind else ("USB serial port" if info.vid else "serial port"),
            role=kind.role if kind else "uart", families=kind.families if kind else (), status=state, fix=fix,
        ))
    return devices


def _sysfs(path: Path, name: str) -> str | None:
    with contextlib.suppress(OSError):
        return (path / name).read_text().strip() or None
    return None


def usb_devices() -> tuple[list[Device], list[str]]:
    """Recognised USB devices (probes, DFU bootloaders) from pyusb, and notes on what could not be looked at."""
    try:
        import usb.core
    except ImportError:
        return [], ["pyusb is not installed, so USB probes are not listed; pip install pyusb"]
    try:
        found = list(usb.core.find(find_all=True) or [])
    except usb.core.NoBackendError:
        return [], ["pyusb found no libusb backend, so USB probes are not listed; "
                    "install the Debian package libusb-1.0-0"]
    except usb.core.USBError as exc:
        return [], [f"listing USB devices failed ({exc}); USB probes are not listed"]
    devices = []
    for dev in found:
        kind = identify(dev.idVendor, dev.idProduct)
        if kind is None:
            continue
        numbers = getattr(dev, "port_numbers", None) or ()
        sysfs = SYSFS_USB / f"{dev.bus}-{'.'.join(str(n) for n in numbers)}" if numbers else None
        node = f"/dev/bus/usb/{dev.bus:03d}/{dev.address:03d}"
        allowed = os.access(node, os.R_OK | os.W_OK)
        devices.append(Device(
            port=None, vid=dev.idVendor, pid=dev.idProduct,
            serial_number=_sysfs(sysfs, "serial") if sysfs else None,
            description=(_sysfs(sysfs, "product") if sysfs else None) or kind.name,
            kind=kind.name, role=kind.role, families=kind.families,
            status="ok" if allowed else "permission-denied",
            fix=None if allowed else udev_fix(dev.idVendor, dev.idProduct),
        ))
    return devices, []


def merge(serial: Sequence[Device], usb: Sequence[Device]) -> list[Device]:
    """Serial ports first; a USB device already listed as a port is folded into it (a probe's USB
    permission problem still shows, since flashing needs the USB side)."""
    merged = list(serial)
    for device in usb:
        same = [i for i, s in enumerate(merged)
                if s.port and (s.vid, s.pid) == (device.vid, device.pid)
                and (s.serial_number == device.serial_number or not device.serial_number)]
        if not same:
            merged.append(device)
            continue
        index = same[0]
        if device.status != "ok" and merged[index].status == "ok" and "probe" in device.role:
            old = merged[index]
            merged[index] = Device(old.port, old.vid, old.pid, old.serial_number, old.description, old.kind,
                                   old.role, old.families, device.status, device.fix)
    return merged


def discover() -> tuple[list[Device], list[str]]:
    """Everything attached, and notes (e.g. no libusb backend)."""
    usb, notes = usb_devices()
    return merge(serial_devices(), usb), notes


def candidates(family: str, devices: Sequence[Device]) -> list[Device]:
    """Serial ports that may be a board of `family`'s UART."""
    return [d for d in devices if d.port and family in d.families]
