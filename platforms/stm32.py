"""STM32 family: Cortex-M boards flashed through a debug probe or the ROM DFU bootloader,
emulated by qemu-system-arm.

Flashers (board default: pyOCD; choose another with `--flasher` or the hardware map),
each a registered flasher module with its own skip rule: `pyocd`
(platforms/pyocd_flash.py), `openocd` (platforms/openocd.py), `st-flash`
(platforms/st_flash.py) and `dfu`, the ROM bootloader over USB (0483:df11) when
no probe is attached (platforms/dfu.py).
"""

from __future__ import annotations

from typing import ClassVar

from platforms.base import PlatformAdapter, register
from platforms.dfu import DfuFlasher
from platforms.openocd import OpenOcdFlasher
from platforms.pyocd_flash import PyOcdFlasher
from platforms.st_flash import StFlashFlasher


@register
class Stm32Adapter(PlatformAdapter):
    """STM32 boards; the emulated one is QEMU's netduinoplus2 (STM32F405)."""

    family: ClassVar[str] = "stm32"
    flashers: ClassVar[tuple[str, ...]] = (PyOcdFlasher.name, OpenOcdFlasher.name, StFlashFlasher.name,
                                           DfuFlasher.name)

    qemu_binary: ClassVar[str | None] = "qemu-system-arm"
    qemu_package: ClassVar[str] = "qemu-system-arm"
