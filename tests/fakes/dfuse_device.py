"""A stand-in for an STM32F405 in its ROM USB DFU bootloader (0483:df11), at the pyusb edge.

What it stands for: the USB device pyusb hands us, reduced to the two calls
our DfuSe code makes (`ctrl_transfer`, `set_interface_altsetting`). It
answers the real requests: standard GET_DESCRIPTOR for the configuration
(an interface descriptor per alternate setting, class 0xFE subclass 1, and
the DFU functional descriptor with wTransferSize 2048 and bcdDFU 0x011A) and
for string descriptors (the DfuSe memory layout
`@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg`); and the DFU
class requests DNLOAD, UPLOAD, GETSTATUS, CLRSTATUS, GETSTATE, ABORT with
the DFU 1.1 state machine and ST's DfuSe commands (0x21 set address pointer,
0x41 sector erase; block numbers >= 2 address pointer + (n - 2) * 2048).
Flash programming can only clear bits: writing over an unerased byte fails
with errPROG as on the chip. `read_protected` makes UPLOAD stall with
errVENDOR, as with RDP level 1.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

BASE = 0x0800_0000
SECTORS = [16 * 1024] * 4 + [64 * 1024] + [128 * 1024] * 7
LAYOUT = "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg"
TRANSFER = 2048
IDLE, DNBUSY, DNLOAD_IDLE, MANIFEST, UPLOAD_IDLE, ERROR = 2, 4, 5, 7, 9, 10
ERR_PROG, ERR_ADDRESS, ERR_VENDOR, ERR_STALLED = 0x06, 0x08, 0x0B, 0x0F


class Stall(Exception):
    """A STALL handshake (pyusb raises USBError for it)."""


class FakeDfuSeDevice:
    """The bootloader's USB side and its 1 MB of flash."""

    def __init__(self, read_protected: bool = False) -> None:
        self.flash = bytearray(b"\xff" * sum(SECTORS))
        self.state = IDLE
        self.status = 0
        self.pointer = BASE
        self.pending: tuple[int, bytes] | None = None
        self.read_protected = read_protected
        self.alternate: int | None = None
        self.requests: Counter[str] = Counter()
        self.erased: list[int] = []
        self.bytes_written = 0
        self.started_at: int | None = None  # where the application was started (manifestation)

    # -- standard requests ----------------------------------------------------

    def _config(self) -> bytes:
        interface = bytes([9, 4, 0, 0, 0, 0xFE, 1, 2, 4])  # alt 0, DFU class, DFU mode, iInterface 4
        functional = struct.pack("<BBBHHH", 9, 0x21, 0x0B, 255, TRANSFER, 0x011A)
        body = interface + functional
        head = struct.pack("<BBHBBBBB", 9, 2, 9 + len(body), 1, 1, 0, 0xC0, 50)
        return head + body

    def _string(self, index: int) -> bytes:
        if index == 0:
            return bytes([4, 3]) + struct.pack("<H", 0x0409)
        text = {4: LAYOUT, 3: "STM32 DFU"}.get(index, "")
        raw = text.encode("utf-16-le")
        return bytes([2 + len(raw), 3]) + raw

    # -- the pyusb edge -------------------------------------------------------

    def set_interface_altsetting(self, interface: Any = None, alternate_setting: Any = None) -> None:
        self.alternate = alternate_setting

    def ctrl_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                      data_or_wLength: Any = None, timeout: int | None = None) -> Any:
        if bmRequestType == 0x80 and bRequest == 6:
            kind, index = wValue >> 8, wValue & 0xFF
            raw = self._config() if kind == 2 else self._string(index)
            return bytearray(raw[:data_or_wLength])
        names = {1: "DNLOAD", 2: "UPLOAD", 3: "GETSTATUS", 4: "CLRSTATUS", 5: "GETSTATE", 6: "ABORT"}
        name = names.get(bRequest, f"request {bRequest}")
        self.requests[name] += 1
        expected_type = 0xA1 if bRequest in (2, 3, 5) else 0x21
        if bmRequestType != expected_type or wIndex != 0 or self.alternate != 0:
            raise Stall(f"{name} with bmRequestType 0x{bmRequestType:02x} on interface {wIndex}")
        if self.state == ERROR and bRequest not in (3, 4, 5):
            raise Stall(f"{name} in dfuERROR")
        return getattr(self, f"_{name.lower()}")(wValue, data_or_wLength)

    def _fail(self, status: int) -> None:
        self.state, self.status = ERROR, status

    def _dnload(self, block: int, data: Any) -> int:
        payload = bytes(data or b"")
        if self.state not in (IDLE, DNLOAD_IDLE):
            raise Stall(f"DNLOAD in state {self.state}")
        if block == 0 and not payload:
            self._fail(ERR_STALLED)
            return 0
        if block == 1:
            self._fail(ERR_STALLED)
            return 0
        self.pending = (block, payload)
        self.state = 3  # dfuDNLOAD-SYNC until GETSTATUS
        return len(payload)

    def _execute(self, block: int, payload: bytes) -> None:
        if block == 0:
            command, address = payload[0], struct.unpack_from("<I", payload, 1)[0] if len(payload) == 5 else None
            if command == 0x21 and address is not None:
                self.pointer = address
            elif command == 0x41 and address is not None:
                start = self._sector_start(address)
                if start is None:
                    self._fail(ERR_ADDRESS)
                    return
                size = SECTORS[self._sector_index(start)]
                self.flash[start - BASE : start - BASE + size] = b"\xff" * size
                self.erased.append(start)
            else:
                self._fail(ERR_STALLED)
            return
        if not payload:  # leave: manifest and jump to the address pointer
            self.state = MANIFEST
            self.started_at = self.pointer
            return
        address = self.pointer + (block - 2) * TRANSFER
        offset = address - BASE
        if offset < 0 or offset + len(payload) > len(self.flash):
            self._fail(ERR_ADDRESS)
            return
        if any(b != 0xFF for b in self.flash[offset : offset + len(payload)]):
            self._fail(ERR_PROG)
            return
        self.flash[offset : offset + len(payload)] = payload
        self.bytes_written += len(payload)

    def _sector_index(self, start: int) -> int:
        offset, index = start - BASE, 0
        while offset > 0:
            offset -= SECTORS[index]
            index += 1
        return index

    def _sector_start(self, address: int) -> int | None:
        cursor = BASE
        for size in SECTORS:
            if cursor <= address < cursor + size:
                return cursor
            cursor += size
        return None

    def _getstatus(self, _value: int, length: Any) -> bytearray:
        if self.state == 3 and self.pending is not None:
            block, payload = self.pending
            self.pending = None
            self.state = DNBUSY
            self._execute(block, payload)
            if self.state == DNBUSY:
                answer = bytearray([self.status, 1, 0, 0, DNBUSY, 0])  # poll again in 1 ms
                self.state = DNLOAD_IDLE
                return answer
        return bytearray([self.status, 0, 0, 0, self.state, 0])

    def _clrstatus(self, _value: int, _data: Any) -> int:
        self.state, self.status = IDLE, 0
        return 0

    def _getstate(self, _value: int, _length: Any) -> bytearray:
        return bytearray([self.state])

    def _abort(self, _value: int, _data: Any) -> int:
        self.state = IDLE
        return 0

    def _upload(self, block: int, length: Any) -> bytearray:
        if self.state not in (IDLE, UPLOAD_IDLE) or block < 2:
            raise Stall(f"UPLOAD block {block} in state {self.state}")
        if self.read_protected:
            self._fail(ERR_VENDOR)
            raise Stall("read protection")
        offset = self.pointer + (block - 2) * TRANSFER - BASE
        self.state = UPLOAD_IDLE
        return bytearray(self.flash[offset : offset + int(length)])
