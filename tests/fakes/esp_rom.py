"""A stand-in for an ESP32-family chip in its ROM serial bootloader, on a pty.

What it stands for: an ESP32-C3 (or, for chip detection, an ESP32) on a
dev board whose USB-UART bridge drives EN and IO0 through the usual
two-transistor auto-program circuit, with a 4 MB SPI NOR flash (a Winbond
W25Q32: JEDEC ID EF 40 16). Nothing of esptool is used here: the protocol
is written from Espressif's serial-protocol documentation.

- Modem lines: a pty has no DTR/RTS, so `modem_lines()` stands in for the
  bridge driver's TIOCMGET/TIOCMSET/TIOCMBIS/TIOCMBIC ioctls on this pty and
  hands the line changes to the stand-in. The circuit: EN is low while RTS
  is asserted and DTR is not; IO0 is low while DTR is asserted and RTS is
  not. When EN rises the chip boots: into the ROM download mode if IO0 is
  low (it prints the ROM's `boot:0x5 ... waiting for download` log), else
  into the application (it then ignores bootloader traffic, as firmware
  would).
- SLIP framing (0xC0 delimiters, 0xDB 0xDC / 0xDB 0xDD escapes). Requests:
  `00 op size(2) checksum(4) data`; responses: `01 op size(2) value(4) data`
  where data ends with the ROM's four status bytes (status, error, 0, 0).
- Commands: SYNC (answered eight times, value non-zero as a ROM does),
  READ_REG / WRITE_REG on a register file (chip magic value, eFuses, and the
  SPI1 user-command registers that run RDID, RDSFDP, RDSR and reset commands
  against the flash model), GET_SECURITY_INFO (ESP32-C3 only; the ESP32 ROM
  answers "invalid message"), SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE,
  FLASH_BEGIN / FLASH_DATA / FLASH_END, FLASH_DEFL_BEGIN / FLASH_DEFL_DATA /
  FLASH_DEFL_END (zlib), SPI_FLASH_MD5 (32 hex characters, as the ROM
  answers). The ROM erases on *_BEGIN; programming can only clear bits, so a
  write over unerased flash corrupts it as on real NOR flash. Data packets
  are checked against the 0xEF-seeded XOR checksum and their sequence
  numbers. Anything else is answered with status 1, error 0x05.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import select
import struct
import termios
import threading
import tty
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024
SECTOR = 4096

OPS = {
    0x02: "FLASH_BEGIN", 0x03: "FLASH_DATA", 0x04: "FLASH_END", 0x05: "MEM_BEGIN", 0x06: "MEM_END",
    0x07: "MEM_DATA", 0x08: "SYNC", 0x09: "WRITE_REG", 0x0A: "READ_REG", 0x0B: "SPI_SET_PARAMS",
    0x0D: "SPI_ATTACH", 0x0F: "CHANGE_BAUDRATE", 0x10: "FLASH_DEFL_BEGIN", 0x11: "FLASH_DEFL_DATA",
    0x12: "FLASH_DEFL_END", 0x13: "SPI_FLASH_MD5", 0x14: "GET_SECURITY_INFO",
}
INVALID_MESSAGE = 0x05
BAD_CHECKSUM = 0x07
DEFLATE_ERROR = 0x0B


@dataclass(frozen=True)
class Chip:
    """ROM facts of one chip model."""

    name: str
    magic: int  # value at 0x40001000, the ROM address esptool reads to tell chips apart
    chip_id: int | None  # in GET_SECURITY_INFO; None: the ROM lacks the command
    spi_base: int  # SPI1 (flash) controller
    usr: int
    usr1: int
    usr2: int
    mosi_dlen: int
    miso_dlen: int
    w0: int
    begin_words: int  # FLASH_BEGIN parameter words (the ESP32 ROM takes 4, later ROMs 5)
    efuses: tuple[tuple[int, int], ...] = ()
    boot_log_download: bytes = b""
    boot_log_app: bytes = b""


ESP32C3 = Chip(
    "esp32c3", magic=0x1B31506F, chip_id=5, spi_base=0x60002000, usr=0x18, usr1=0x1C, usr2=0x20,
    mosi_dlen=0x24, miso_dlen=0x28, w0=0x58, begin_words=5,
    efuses=((0x60008850, 4 << 18),),  # BLOCK1 word 3: chip revision v0.4
    boot_log_download=(b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\n"
                       b"rst:0x1 (POWERON),boot:0x5 (DOWNLOAD(USB/UART0/1))\r\nwaiting for download\r\n"),
    boot_log_app=(b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\n"
                  b"rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)\r\n"),
)
ESP32 = Chip(
    "esp32", magic=0x00F01D83, chip_id=None, spi_base=0x3FF42000, usr=0x1C, usr1=0x20, usr2=0x24,
    mosi_dlen=0x28, miso_dlen=0x2C, w0=0x80, begin_words=4,
    boot_log_download=b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
                      b"waiting for download\r\n",
    boot_log_app=b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
)

JEDEC_ID = bytes([0xEF, 0x40, 0x16])  # Winbond, SPI NOR, 2**0x16 bytes = 4 MB


def _sfdp() -> bytes:
    table = bytearray(b"\xff" * 0x100)
    table[0:8] = b"SFDP" + bytes([0x06, 0x01, 0x01, 0xFF])  # rev 1.6, two parameter headers
    table[8:16] = bytes([0x00, 0x06, 0x01, 0x10, 0x80, 0x00, 0x00, 0xFF])  # JEDEC basic table at 0x80
    table[16:24] = bytes([0xEF, 0x00, 0x01, 0x04, 0x00, 0x01, 0x00, 0xFF])  # Winbond's own table
    return bytes(table)


SFDP = _sfdp()
_REGISTRY: dict[str, EspRomStandIn] = {}


def slip_encode(packet: bytes) -> bytes:
    """One SLIP frame."""
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class EspRomStandIn:
    """The chip, its bootloader and its flash, behind the pty at `path`."""

    def __init__(self, chip: Chip = ESP32C3, flash_size: int = 4 * MB) -> None:
        self.chip = chip
        self.flash = bytearray(b"\xff" * flash_size)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.regs: dict[int, int] = {chip.spi_base + chip.w0: 0, 0x40001000: chip.magic, **dict(chip.efuses)}
        self.dtr = self.rts = False
        self.mode = "app"  # the board was running its firmware
        self.boots: list[str] = []
        self.commands: Counter[str] = Counter()
        self.bytes_written = 0
        self.baud = 115200
        self.line_changes: list[tuple[bool, bool]] = []
        self._write: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        _REGISTRY[self.path] = self

    def close(self) -> None:
        """Stop serving and release the pty."""
        self._stop.set()
        self._thread.join(timeout=2)
        _REGISTRY.pop(self.path, None)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def reset_stats(self) -> None:
        """Forget what was counted so far (the flash keeps its contents)."""
        self.boots.clear()
        self.commands.clear()
        self.bytes_written = 0
        self.line_changes.clear()

    # -- the auto-program circuit ------------------------------------------

    def set_lines(self, dtr: bool, rts: bool) -> None:
        """New DTR/RTS levels from the host; EN rising boots the chip, IO0 picks the boot mode."""
        en_was_low = self.rts and not self.dtr
        self.dtr, self.rts = dtr, rts
        self.line_changes.append((dtr, rts))
        en_low = rts and not dtr
        if en_low:
            self.mode = "reset"
        elif en_was_low:
            download = dtr and not rts  # IO0 sampled low as EN rises
            self.mode = "download" if download else "app"
            self.boots.append(self.mode)
            self._write = None
            self._send_raw(self.chip.boot_log_download if download else self.chip.boot_log_app)

    # -- the bootloader -------------------------------------------------------

    def _send_raw(self, data: bytes) -> None:
        with self._lock:
            os.write(self.master, data)

    def _serve(self) -> None:
        frame: bytearray | None = None
        escaped = False
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                continue  # no reader on the other side yet
            if self.mode != "download":
                frame = None
                continue
            for byte in chunk:
                if frame is None:
                    if byte == 0xC0:
                        frame = bytearray()
                    continue
                if escaped:
                    frame.append({0xDC: 0xC0, 0xDD: 0xDB}.get(byte, byte))
                    escaped = False
                elif byte == 0xDB:
                    escaped = True
                elif byte == 0xC0:
                    if frame:
                        self._handle(bytes(frame))
                    frame = bytearray()
                else:
                    frame.append(byte)

    def _reply(self, op: int, value: int = 0, payload: bytes = b"", error: int = 0) -> None:
        status = bytes([1 if error else 0, error, 0, 0])
        body = payload + status
        self._send_raw(slip_encode(struct.pack("<BBHI", 1, op, len(body), value) + body))

    def _handle(self, packet: bytes) -> None:
        if len(packet) < 8 or packet[0] != 0:
            return
        op, size, checksum = struct.unpack_from("<xBHI", packet)
        data = packet[8 : 8 + size]
        name = OPS.get(op, f"0x{op:02x}")
        self.commands[name] += 1
        handler = getattr(self, f"_op_{name.lower()}", None)
        if handler is None or len(data) != size:
            self._reply(op, error=INVALID_MESSAGE)
            return
        handler(op, data, checksum)

    def _op_sync(self, op: int, data: bytes, checksum: int) -> None:
        if data != b"\x07\x07\x12\x20" + b"\x55" * 32:
            self._reply(op, error=INVALID_MESSAGE)
            return
        for _ in range(8):
            self._reply(op, value=0x20120707)

    def _op_read_reg(self, op: int, data: bytes, checksum: int) -> None:
        (address,) = struct.unpack("<I", data)
        self._reply(op, value=self.regs.get(address, 0))

    def _op_write_reg(self, op: int, data: bytes, checksum: int) -> None:
        if len(data) % 16:
            self._reply(op, error=INVALID_MESSAGE)
            return
        for offset in range(0, len(data), 16):
            address, value, mask, _delay_us = struct.unpack_from("<IIII", data, offset)
            self.regs[address] = (self.regs.get(address, 0) & ~mask) | (value & mask)
            if address == self.chip.spi_base and value & (1 << 18):  # SPI_CMD_REG, USR bit: run it
                self._spi_user_command()
        self._reply(op)

    def _spi_user_command(self) -> None:
        chip, regs = self.chip, self.regs
        command = regs.get(chip.spi_base + chip.usr2, 0) & 0xFF
        miso_bits = regs.get(chip.spi_base + chip.miso_dlen, 0) + 1
        address = regs.get(chip.spi_base + 0x04, 0) & 0xFFFFFF
        if command == 0x9F:
            answer = JEDEC_ID
        elif command == 0x5A:
            answer = SFDP[address : address + 4]
        elif command in (0x05, 0x35, 0x15):
            answer = b"\x00"
        else:
            answer = b""
        value = int.from_bytes(answer[: (miso_bits + 7) // 8], "little")
        regs[chip.spi_base + chip.w0] = value if answer else regs.get(chip.spi_base + chip.w0, 0)
        regs[chip.spi_base] = regs[chip.spi_base] & ~(1 << 18)  # done

    def _op_get_security_info(self, op: int, data: bytes, checksum: int) -> None:
        if self.chip.chip_id is None:
            self._reply(op, error=INVALID_MESSAGE)
            return
        info = struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.chip.chip_id, 4)
        self._reply(op, payload=info)

    def _op_spi_attach(self, op: int, data: bytes, checksum: int) -> None:
        self._reply(op, error=0 if len(data) == 8 else INVALID_MESSAGE)

    def _op_spi_set_params(self, op: int, data: bytes, checksum: int) -> None:
        self._reply(op, error=0 if len(data) == 24 else INVALID_MESSAGE)

    def _op_change_baudrate(self, op: int, data: bytes, checksum: int) -> None:
        baud, _old = struct.unpack("<II", data)
        self._reply(op)  # answered at the old rate; a pty carries any rate, so only the number is kept
        self.baud = baud

    def _erase(self, offset: int, size: int) -> bool:
        start, end = offset // SECTOR * SECTOR, -(-(offset + size) // SECTOR) * SECTOR
        if end > len(self.flash):
            return False
        self.flash[start:end] = b"\xff" * (end - start)
        return True

    def _begin(self, op: int, data: bytes, compressed: bool) -> None:
        if len(data) != 4 * self.chip.begin_words:
            self._reply(op, error=INVALID_MESSAGE)
            return
        size, blocks, block_size, offset = struct.unpack_from("<IIII", data)
        if not self._erase(offset, size):
            self._reply(op, error=INVALID_MESSAGE)
            return
        self._write = {"offset": offset, "cursor": offset, "seq": 0, "blocks": blocks, "block_size": block_size,
                       "inflate": zlib.decompressobj() if compressed else None}
        self._reply(op)

    def _data(self, op: int, data: bytes, checksum: int, compressed: bool) -> None:
        state = self._write
        length, seq = struct.unpack_from("<II", data)
        payload = data[16:]
        expected = 0xEF
        for byte in payload:
            expected ^= byte
        if state is None or (state["inflate"] is not None) != compressed or len(payload) != length:
            self._reply(op, error=INVALID_MESSAGE)
            return
        if checksum != expected:
            self._reply(op, error=BAD_CHECKSUM)
            return
        if seq != state["seq"]:
            self._reply(op, error=INVALID_MESSAGE)
            return
        if compressed:
            try:
                payload = state["inflate"].decompress(payload)
            except zlib.error:
                self._reply(op, error=DEFLATE_ERROR)
                return
        cursor = state["cursor"]
        old = self.flash[cursor : cursor + len(payload)]
        self.flash[cursor : cursor + len(payload)] = bytes(a & b for a, b in zip(old, payload, strict=True))
        state["cursor"] = cursor + len(payload)
        state["seq"] += 1
        self.bytes_written += len(payload)
        self._reply(op)

    def _op_flash_begin(self, op: int, data: bytes, checksum: int) -> None:
        self._begin(op, data, compressed=False)

    def _op_flash_defl_begin(self, op: int, data: bytes, checksum: int) -> None:
        self._begin(op, data, compressed=True)

    def _op_flash_data(self, op: int, data: bytes, checksum: int) -> None:
        self._data(op, data, checksum, compressed=False)

    def _op_flash_defl_data(self, op: int, data: bytes, checksum: int) -> None:
        self._data(op, data, checksum, compressed=True)

    def _end(self, op: int, data: bytes) -> None:
        (stay,) = struct.unpack("<I", data)
        self._write = None
        self._reply(op)
        if not stay:  # 0: reboot into the application
            self.mode = "app"
            self.boots.append("app")

    def _op_flash_end(self, op: int, data: bytes, checksum: int) -> None:
        self._end(op, data)

    def _op_flash_defl_end(self, op: int, data: bytes, checksum: int) -> None:
        self._end(op, data)

    def _op_spi_flash_md5(self, op: int, data: bytes, checksum: int) -> None:
        address, size, _, _ = struct.unpack("<IIII", data)
        if address + size > len(self.flash):
            self._reply(op, error=INVALID_MESSAGE)
            return
        digest = hashlib.md5(self.flash[address : address + size]).hexdigest().encode()
        self._reply(op, payload=digest)


# -- the bridge driver's modem-control ioctls ----------------------------------


class _ModemLineShim:
    """Stands for `fcntl` with a USB-UART bridge driver behind the stand-in's pty: TIOCMGET, TIOCMSET,
    TIOCMBIS and TIOCMBIC on that pty move the stand-in's DTR/RTS; every other call is the real fcntl."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def ioctl(self, fd: int, request: int, arg: Any = 0, *rest: Any) -> Any:
        requests = (termios.TIOCMGET, termios.TIOCMSET, termios.TIOCMBIS, termios.TIOCMBIC)
        standin = None
        if request in requests:
            with contextlib.suppress(OSError):
                standin = _REGISTRY.get(os.ttyname(fd))
        if standin is None:
            return self._real.ioctl(fd, request, arg, *rest)
        lines = (termios.TIOCM_DTR if standin.dtr else 0) | (termios.TIOCM_RTS if standin.rts else 0)
        if request == termios.TIOCMGET:
            return struct.pack("I", lines)
        (bits,) = struct.unpack("I", arg)
        if request == termios.TIOCMBIS:
            bits = lines | bits
        elif request == termios.TIOCMBIC:
            bits = lines & ~bits
        standin.set_lines(bool(bits & termios.TIOCM_DTR), bool(bits & termios.TIOCM_RTS))
        return arg


@contextlib.contextmanager
def modem_lines() -> Iterator[None]:
    """Route modem-control ioctls on stand-in ptys (from pyserial and esptool's reset code) to the stand-ins."""
    import esp_pylib.serial_reset
    import serial.serialposix

    shim = _ModemLineShim(fcntl)
    modules = (serial.serialposix, esp_pylib.serial_reset)
    saved = [module.fcntl for module in modules]  # type: ignore[attr-defined]
    for module in modules:
        module.fcntl = shim  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, real in zip(modules, saved, strict=True):
            module.fcntl = real  # type: ignore[attr-defined]
