"""st-flash (stlink-tools) as a flasher.

Skip rule: st-flash has no verify-only command, so each image is read back
with `st-flash read` and compared (sha256) first; only images that differ are
written. A `st-flash reset` ends the run so the new firmware starts.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from platforms.flasher import Flasher, ToolStatus, register_flasher
from platforms.images import FlashImage, FlashRegion
from platforms.tools import ST_FLASH, run_tool

NEXT_STEP = "check the ST-LINK cable and `st-info --probe`"


@register_flasher
class StFlashFlasher(Flasher):
    """An ST-LINK through stlink-tools' st-flash."""

    name: ClassVar[str] = "st-flash"

    @classmethod
    def status(cls) -> ToolStatus:
        return ST_FLASH.status("st-flash (flasher)")

    def _serial(self) -> list[str]:
        return ["--serial", self.options.probe] if self.options.probe else []

    def write(self, images: Sequence[FlashImage]) -> tuple[FlashRegion, ...]:
        board = self.board.name
        regions = []
        with tempfile.TemporaryDirectory(prefix="tiny-profiler-stflash-") as tmp:
            for image in images:
                readback = Path(tmp) / f"{image.name}.read"
                read = [*self._serial(), "read", str(readback), f"0x{image.address:08x}", str(len(image.data))]
                run_tool(ST_FLASH, read, f"st-flash could not read back the {image.name} of {board}", NEXT_STEP)
                same = hashlib.sha256(readback.read_bytes()).digest() == hashlib.sha256(image.data).digest()
                if not same:
                    source = Path(tmp) / f"{image.name}.bin"
                    source.write_bytes(image.data)
                    run_tool(ST_FLASH, [*self._serial(), "write", str(source), f"0x{image.address:08x}"],
                             f"st-flash could not write the {image.name} of {board}", NEXT_STEP)
                regions.append(FlashRegion(image.name, image.address, len(image.data), written=not same))
        run_tool(ST_FLASH, [*self._serial(), "reset"], f"st-flash could not reset {board}", NEXT_STEP)
        return tuple(regions)

    def reset(self) -> None:
        run_tool(ST_FLASH, [*self._serial(), "reset"], f"st-flash could not reset {self.board.name}",
                 "check the ST-LINK cable")
