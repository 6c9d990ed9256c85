"""The STM32 ROM DFU bootloader (USB 0483:df11), spoken directly through pyusb.

DFU 1.1 with ST's DfuSe extensions (ST AN3156, UM0424): every request is a
class control transfer to interface 0.

- A DNLOAD with wValue 0 is a command: 0x21 + address sets the address
  pointer, 0x41 + address erases the sector holding it. The command runs on
  the first GETSTATUS (state dfuDNBUSY); after bwPollTimeout ms a second
  GETSTATUS reports dfuDNLOAD-IDLE and its status; an ABORT returns to dfuIDLE.
- A DNLOAD with wValue n >= 2 writes its bytes at
  address pointer + (n - 2) * wTransferSize; we set the pointer before every
  block and always send block 2, as dfu-util does.
- An UPLOAD with wValue n >= 2 reads from the same address formula (from
  dfuIDLE, after setting the pointer).
- Leaving: set the pointer to the application's start, DNLOAD block 2 with no
  data, then GETSTATUS: the bootloader manifests and jumps to the pointer.

The memory layout comes from the alternate setting's name, e.g.
`@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg` (count*size,
unit K/M/B, last letter: bit 0 readable, bit 1 erasable, bit 2 writeable).

Skip rule: DfuSe has no checksum command, so each image is read back with
UPLOAD and compared; a matching image is not erased or written. A written
image is read back again to verify it.
"""

from __future__ import annotations

import contextlib
import re
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Protocol

from platforms.flasher import Flasher, ToolStatus, register_flasher
from platforms.images import FlashImage, FlashRegion
from profiler.errors import FlashError, ToolMissing

STM32_DFU_VID_PID = (0x0483, 0xDF11)
DFU_DETACH, DFU_DNLOAD, DFU_UPLOAD, DFU_GETSTATUS, DFU_CLRSTATUS, DFU_GETSTATE, DFU_ABORT = range(7)
REQ_OUT = 0x21  # host to device | class | interface
REQ_IN = 0xA1  # device to host | class | interface
STD_IN_DEVICE = 0x80
GET_DESCRIPTOR = 6
CMD_SET_ADDRESS = 0x21
CMD_ERASE = 0x41
TIMEOUT_MS = 5000


class State(IntEnum):
    """DFU 1.1 device states (bState of GETSTATUS)."""

    APP_IDLE = 0
    APP_DETACH = 1
    DFU_IDLE = 2
    DFU_DNLOAD_SYNC = 3
    DFU_DNBUSY = 4
    DFU_DNLOAD_IDLE = 5
    DFU_MANIFEST_SYNC = 6
    DFU_MANIFEST = 7
    DFU_MANIFEST_WAIT_RESET = 8
    DFU_UPLOAD_IDLE = 9
    DFU_ERROR = 10


STATUS_TEXT = {
    0x01: "errTARGET (file not for this device)", 0x02: "errFILE", 0x03: "errWRITE (cannot write memory)",
    0x04: "errERASE (erase failed)", 0x05: "errCHECK_ERASED", 0x06: "errPROG (program failed)",
    0x07: "errVERIFY", 0x08: "errADDRESS (address out of range)", 0x09: "errNOTDONE", 0x0A: "errFIRMWARE",
    0x0B: "errVENDOR (read protection active?)", 0x0E: "errUNKNOWN", 0x0F: "errSTALLEDPKT",
}


class UsbDevice(Protocol):
    """The two pyusb Device methods this module uses (the rest of USB stays behind them)."""

    def ctrl_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                      data_or_wLength: Any = None, timeout: int | None = None) -> Any: ...

    def set_interface_altsetting(self, interface: Any = None, alternate_setting: Any = None) -> None: ...


@dataclass(frozen=True)
class Status:
    """A GETSTATUS answer."""

    status: int
    poll_ms: int
    state: State


@dataclass(frozen=True)
class Segment:
    """A run of equal sectors from the DfuSe memory layout string."""

    start: int
    sector_size: int
    count: int
    readable: bool
    erasable: bool
    writeable: bool

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.start + self.sector_size * self.count


_UNITS = {"K": 1024, "M": 1024 * 1024, "B": 1, " ": 1}


def parse_layout(name: str) -> list[Segment]:
    """Segments of a DfuSe alternate-setting name such as `@Internal Flash /0x08000000/04*016Kg`."""
    parts = name.split("/")
    if not parts[0].startswith("@") or len(parts) < 3:
        raise FlashError(f"DFU memory layout {name!r} is not in DfuSe form; is this an STM32 ROM bootloader?")
    segments: list[Segment] = []
    for address_text, sectors in zip(parts[1::2], parts[2::2], strict=False):
        address = int(address_text.strip(), 16)
        for match in re.finditer(r"(\d+)\*\s*(\d+)\s*([KMB ]?)([a-g])", sectors):
            count, size, unit, kind = int(match[1]), int(match[2]), match[3] or " ", match[4]
            bits = ord(kind) - ord("a") + 1
            segment = Segment(address, size * _UNITS[unit], count, bool(bits & 1), bool(bits & 2), bool(bits & 4))
            segments.append(segment)
            address = segment.end
    if not segments:
        raise FlashError(f"DFU memory layout {name!r} lists no sectors; is this an STM32 ROM bootloader?")
    return segments


class DfuSe:
    """One DfuSe interface of a USB device in DFU mode."""

    def __init__(self, device: UsbDevice, interface: int = 0, alternate: int = 0) -> None:
        self.device = device
        self.interface = interface
        self.alternate = alternate
        self.transfer_size = 0
        self.layout: list[Segment] = []
        self.layout_name = ""

    # -- descriptors --------------------------------------------------------

    def open(self) -> DfuSe:
        """Read the descriptors, select the alternate setting and bring the device to dfuIDLE."""
        head = bytes(self.device.ctrl_transfer(STD_IN_DEVICE, GET_DESCRIPTOR, 0x0200, 0, 9, TIMEOUT_MS))
        total = struct.unpack_from("<H", head, 2)[0]
        config = bytes(self.device.ctrl_transfer(STD_IN_DEVICE, GET_DESCRIPTOR, 0x0200, 0, total, TIMEOUT_MS))
        name_index = None
        offset = 0
        while offset + 2 <= len(config):
            length, kind = config[offset], config[offset + 1]
            if length == 0:
                break
            body = config[offset : offset + length]
            if kind == 4 and body[2] == self.interface and body[3] == self.alternate:  # INTERFACE
                name_index = body[8]
            elif kind == 0x21 and length >= 7:  # DFU FUNCTIONAL
                self.transfer_size = struct.unpack_from("<H", body, 5)[0]
            offset += length
        if not name_index or not self.transfer_size:
            raise FlashError("the DFU device has no DfuSe interface descriptor; is it an STM32 ROM bootloader?")
        self.layout_name = self._string(name_index)
        self.layout = parse_layout(self.layout_name)
        self.device.set_interface_altsetting(interface=self.interface, alternate_setting=self.alternate)
        self._to_idle()
        return self

    def _string(self, index: int) -> str:
        langids = bytes(self.device.ctrl_transfer(STD_IN_DEVICE, GET_DESCRIPTOR, 0x0300, 0, 255, TIMEOUT_MS))
        langid = struct.unpack_from("<H", langids, 2)[0] if len(langids) >= 4 else 0x0409
        raw = bytes(self.device.ctrl_transfer(STD_IN_DEVICE, GET_DESCRIPTOR, 0x0300 | index, langid, 255,
                                              TIMEOUT_MS))
        return raw[2 : raw[0]].decode("utf-16-le")

    # -- requests -----------------------------------------------------------

    def _ctrl(self, request_type: int, request: int, value: int, data: Any) -> Any:
        """One class request; a USB failure (a STALL, the device gone) becomes a FlashError saying why."""
        try:
            return self.device.ctrl_transfer(request_type, request, value, self.interface, data, TIMEOUT_MS)
        except Exception as exc:  # pyusb raises USBError
            reason = ""
            if request not in (DFU_GETSTATUS, DFU_CLRSTATUS):
                with contextlib.suppress(Exception):
                    st = self.status()
                    if st.status:
                        reason = f" ({STATUS_TEXT.get(st.status, f'status 0x{st.status:02x}')})"
                    self._out(DFU_CLRSTATUS, 0)
            raise FlashError(f"the DFU bootloader refused a request{reason}: {exc}; reset the board into DFU "
                             "mode and retry, or remove read protection") from exc

    def status(self) -> Status:
        """DFU_GETSTATUS: bStatus, bwPollTimeout (24 bits), bState, iString."""
        raw = bytes(self._ctrl(REQ_IN, DFU_GETSTATUS, 0, 6))
        return Status(raw[0], raw[1] | raw[2] << 8 | raw[3] << 16, State(raw[4]))

    def _out(self, request: int, value: int, data: bytes = b"") -> None:
        self._ctrl(REQ_OUT, request, value, data)

    def _to_idle(self) -> None:
        for _ in range(8):
            st = self.status()
            if st.state == State.DFU_IDLE:
                return
            if st.state == State.DFU_ERROR:
                self._out(DFU_CLRSTATUS, 0)
            else:
                self._out(DFU_ABORT, 0)
        raise FlashError(f"the DFU bootloader stays in state {st.state.name}; reset the board into DFU mode again")

    def _wait(self, first: Status, what: str) -> Status:
        st = first
        while st.state in (State.DFU_DNBUSY, State.DFU_DNLOAD_SYNC):
            time.sleep(st.poll_ms / 1000)
            st = self.status()
        if st.status != 0 or st.state == State.DFU_ERROR:
            text = STATUS_TEXT.get(st.status, f"status 0x{st.status:02x}")
            self._out(DFU_CLRSTATUS, 0)
            raise FlashError(f"DFU {what} failed: {text}; check the address range, or remove read protection")
        return st

    def _command(self, payload: bytes, what: str) -> None:
        self._out(DFU_DNLOAD, 0, payload)
        st = self.status()
        if st.state != State.DFU_DNBUSY:
            raise FlashError(f"DFU {what}: the bootloader answered {st.state.name}, not dfuDNBUSY; "
                             "reset the board into DFU mode and retry")
        self._wait(st, what)
        self._out(DFU_ABORT, 0)
        self._to_idle()

    def set_address(self, address: int) -> None:
        """DfuSe Set Address Pointer (0x21)."""
        self._command(struct.pack("<BI", CMD_SET_ADDRESS, address), f"set address 0x{address:08x}")

    def erase_sector(self, address: int) -> None:
        """DfuSe Erase (0x41) of the sector holding `address`."""
        self._command(struct.pack("<BI", CMD_ERASE, address), f"erase at 0x{address:08x}")

    # -- memory -------------------------------------------------------------

    def _segment(self, address: int) -> Segment:
        for segment in self.layout:
            if segment.start <= address < segment.end:
                return segment
        raise FlashError(f"0x{address:08x} is outside the DFU memory layout {self.layout_name.strip()!r}; "
                         "check the board profile's addresses")

    def sectors(self, address: int, size: int) -> list[int]:
        """Start addresses of the sectors that [address, address + size) touches."""
        starts: list[int] = []
        end = address + size
        cursor = address
        while cursor < end:
            segment = self._segment(cursor)
            index = (cursor - segment.start) // segment.sector_size
            start = segment.start + index * segment.sector_size
            starts.append(start)
            cursor = start + segment.sector_size
        return starts

    def read(self, address: int, size: int) -> bytes:
        """UPLOAD `size` bytes from `address`."""
        if not self._segment(address).readable:
            raise FlashError(f"DFU memory at 0x{address:08x} is not readable; remove read protection")
        self.set_address(address)
        data = bytearray()
        block = 2
        while len(data) < size:
            want = min(self.transfer_size, size - len(data))
            chunk = bytes(self._ctrl(REQ_IN, DFU_UPLOAD, block, want))
            if not chunk:
                break
            data += chunk
            block += 1
        self._to_idle()
        return bytes(data[:size])

    def write(self, address: int, data: bytes) -> None:
        """Erase the sectors the data touches, then DNLOAD it block by block."""
        for sector in self.sectors(address, len(data)):
            if not (self._segment(sector).erasable and self._segment(sector).writeable):
                raise FlashError(f"DFU memory at 0x{sector:08x} is not writeable; check the board profile")
            self.erase_sector(sector)
        for offset in range(0, len(data), self.transfer_size):
            chunk = data[offset : offset + self.transfer_size]
            self.set_address(address + offset)
            self._out(DFU_DNLOAD, 2, chunk)
            self._wait(self.status(), f"write at 0x{address + offset:08x}")
        self._to_idle()

    def leave(self, address: int) -> None:
        """Jump to the application at `address`: manifestation with an empty download."""
        self.set_address(address)
        self._out(DFU_DNLOAD, 2, b"")
        with contextlib.suppress(FlashError):
            self.status()  # starts manifestation; the device may drop off the bus before answering


def find_device(serial: str | None = None) -> Any:
    """The first USB device in STM32 ROM DFU mode (optionally with this serial number)."""
    try:
        import usb.core
    except ImportError as exc:  # pragma: no cover - pyusb is a dependency
        raise ToolMissing("pyusb is not installed; pip install pyusb") from exc
    vid, pid = STM32_DFU_VID_PID
    try:
        found = list(usb.core.find(find_all=True, idVendor=vid, idProduct=pid) or [])
    except usb.core.NoBackendError as exc:
        raise ToolMissing("pyusb has no libusb backend; install the Debian package libusb-1.0-0") from exc
    if serial:
        found = [d for d in found if _serial_of(d) == serial]
    if not found:
        raise FlashError("no STM32 in ROM DFU mode (USB 0483:df11) found; hold BOOT0 high, reset the board, "
                         "and check `tiny-profiler devices`, or flash through a probe (--flasher pyocd)")
    return found[0]


def _serial_of(device: Any) -> str | None:
    try:
        return str(device.serial_number)
    except Exception:  # permission, or a device that went away
        return None


def flash_images(dfu: DfuSe, images: Sequence[FlashImage], start_address: int) -> tuple[FlashRegion, ...]:
    """Write the images that differ from what the board holds, verify them, then start the application."""
    regions = []
    for image in images:
        same = dfu.read(image.address, len(image.data)) == image.data
        if not same:
            dfu.write(image.address, image.data)
            if dfu.read(image.address, len(image.data)) != image.data:
                raise FlashError(f"DFU verify of the {image.name} at 0x{image.address:08x} failed; "
                                 "retry, and check the board's power")
        regions.append(FlashRegion(image.name, image.address, len(image.data), written=not same))
    dfu.leave(start_address)
    return tuple(regions)


@register_flasher
class DfuFlasher(Flasher):
    """The STM32 ROM DFU bootloader (no probe): writes what differs, then jumps to the firmware."""

    name: ClassVar[str] = "dfu"

    @classmethod
    def status(cls) -> ToolStatus:
        """DFU speaks through pyusb, which needs the libusb-1.0 shared library."""
        what = "libusb-1.0 (dfu flasher)"
        try:
            import usb.backend.libusb1

            backend = usb.backend.libusb1.get_backend()
        except Exception:  # pyusb missing or broken: doctor's python rows say which
            backend = None
        if backend is None:
            return ToolStatus(what, False, "pyusb finds no libusb backend", "sudo apt-get install libusb-1.0-0")
        return ToolStatus(what, True, "pyusb backend found")

    def _open(self) -> DfuSe:
        return DfuSe(find_device(self.options.usb_serial)).open()

    def write(self, images: Sequence[FlashImage]) -> tuple[FlashRegion, ...]:
        return flash_images(self._open(), images, self.board.firmware_addr)

    def reset(self) -> None:
        self._open().leave(self.board.firmware_addr)
