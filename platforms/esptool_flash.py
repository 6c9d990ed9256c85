"""esptool (the library, esptool >= 5) as a flasher, over the ROM serial bootloader of Espressif chips.

1. `detect_chip(port, before=...)` resets the chip into its ROM bootloader with
   esptool's own DTR/RTS sequences (the tight POSIX sequence for USB-UART
   bridges, the USB-Serial-JTAG sequence for 303a:1001 ports; `manual` skips
   the reset), syncs, and identifies the chip; a chip other than the board's
   stops here with a one-line error.
2. We stay in ROM loader mode (no stub upload, like `esptool --no-stub`):
   `attach_flash`, SPI_SET_PARAMS with the detected flash size, and
   CHANGE_BAUDRATE to the flash baud.
3. Skip rule: for every image (firmware, model) the ROM's SPI_FLASH_MD5 of
   its flash range is compared with the MD5 of the bytes we would write
   (padded to 4 bytes as esptool pads them). Only images that differ go to
   `write_flash` (compressed FLASH_DEFL_* writes, then esptool's own MD5
   verify).
4. `reset_chip(esp, "hard-reset")` pulses EN with IO0 high so the firmware boots.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import sys
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from platforms.flasher import Flasher, ToolStatus, register_flasher
from platforms.images import FlashImage, FlashRegion
from profiler.errors import FlashError

ROM_BAUD = 115200
DEFAULT_FLASH_BAUD = 460800
# esptool's `before` for each reset method of the board profile / hardware map.
BEFORE = {"dtr-rts": "default-reset", "usb-jtag": "usb-reset", "manual": "no-reset"}


@contextlib.contextmanager
def quiet_esptool() -> Iterator[None]:
    """esptool prints progress on stdout; keep stdout clean for `--json` (errors still reach us as exceptions)."""
    from esptool.logger import log

    log.set_verbosity("silent")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        log.set_verbosity("auto")


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (esptool's can run to several)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@register_flasher
class EsptoolFlasher(Flasher):
    """An Espressif chip's ROM bootloader on the board's serial port."""

    name: ClassVar[str] = "esptool"
    connect_attempts: int = 7  # esptool's default number of reset-and-sync attempts

    @classmethod
    def status(cls) -> ToolStatus:
        what = "esptool (flasher)"
        try:
            return ToolStatus(what, True, importlib.metadata.version("esptool"))
        except importlib.metadata.PackageNotFoundError:
            return ToolStatus(what, False, "not installed", "pip install 'esptool>=5,<6'")

    def _before(self) -> str:
        method = self.options.reset_method or self.board.reset_method
        if method not in BEFORE:
            raise FlashError(f"reset method {method!r} cannot enter the {self.board.name} bootloader; "
                             f"use one of {', '.join(BEFORE)} in the hardware map")
        return BEFORE[method]

    def _connect(self) -> Any:
        from esptool.cmds import detect_chip

        board, port = self.board, self.port
        try:
            esp = detect_chip(port, ROM_BAUD, self._before(), connect_attempts=self.connect_attempts)
        except Exception as exc:  # FatalError, SerialException, OSError
            raise FlashError(
                f"esptool could not reach the {board.name} bootloader on {port}: {first_line(exc)}; "
                "check the cable, or hold BOOT while pressing RESET and use reset = \"manual\""
            ) from exc
        detected = esp.CHIP_NAME.lower().replace("-", "")
        if detected != board.flash_target:
            esp._port.close()
            raise FlashError(f"the board on {port} is an {esp.CHIP_NAME}, not an {board.name}; "
                             f"pass --device {detected}")
        return esp

    def write(self, images: Sequence[FlashImage]) -> tuple[FlashRegion, ...]:
        from esptool.cmds import reset_chip

        with quiet_esptool():
            esp = self._connect()
            try:
                regions = self._write(esp, images)
                reset_chip(esp, "hard-reset")
            except FlashError:
                raise
            except Exception as exc:
                raise FlashError(f"esptool failed while flashing {self.board.name} on {self.port}: "
                                 f"{first_line(exc)}; retry, and check the cable and the board's power") from exc
            finally:
                esp._port.close()
        return regions

    def _write(self, esp: Any, images: Sequence[FlashImage]) -> tuple[FlashRegion, ...]:
        from esptool.cmds import attach_flash, detect_flash_size, write_flash
        from esptool.util import flash_size_bytes, pad_to

        attach_flash(esp)
        detected = detect_flash_size(esp)
        esp.flash_set_parameters(flash_size_bytes(detected) if detected else self.board.flash_bytes)
        baud = self.options.flash_baud or DEFAULT_FLASH_BAUD
        if baud != ROM_BAUD:
            esp.change_baud(baud)
        regions = []
        pending = []
        for image in images:
            padded = pad_to(image.data, 4)
            same = esp.flash_md5sum(image.address, len(padded)) == hashlib.md5(padded).hexdigest()
            regions.append(FlashRegion(image.name, image.address, len(image.data), written=not same))
            if not same:
                pending.append((image.address, image.data))
        if pending:
            write_flash(esp, pending, flash_size="keep", compress=True, no_progress=True)
        return tuple(regions)

    def reset(self) -> None:
        """EN pulse with IO0 high through esptool's HardReset (the USB variant on USB-Serial-JTAG)."""
        import serial
        from esptool.reset import HardReset

        board, port = self.board, self.port
        uses_usb = (self.options.reset_method or board.reset_method) == "usb-jtag"
        try:
            link = serial.serial_for_url(port, do_not_open=True)
            link.dtr = link.rts = False  # pyserial would assert both on open; keep IO0 high and EN free
            link.open()
        except (serial.SerialException, OSError) as exc:
            raise FlashError(f"cannot open {port} to reset {board.name}: {first_line(exc)}; "
                             "check `tiny-profiler devices`") from exc
        try:
            with quiet_esptool():
                HardReset(link, uses_usb)()
        finally:
            link.close()
