"""Arm MPS FPGA machines as QEMU models them: `mps2-an500` (Cortex-M7) and `mps3-an547` (Cortex-M55 with
Helium), the emulated stand-ins for the STM32H7 and STM32N6 rows of the stm32 family.

They share the core with those parts, not the peripherals (docs/hardware.md): the firmware ports
(`firmware/ports/mps2-an500`, `firmware/ports/mps3-an547`) drive the machines' CMSDK UART and SysTick.
There is nothing to flash: a real MPS2/MPS3 board takes its images from a USB drive we do not drive, so a
real Cortex-M7 or M55 is profiled through its own stm32 row.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from platforms.base import FlashReport, PlatformAdapter, register
from platforms.boards import BoardProfile
from profiler.errors import PlatformError


@register
class MpsAdapter(PlatformAdapter):
    """Emulated Arm MPS2/MPS3 boards on qemu-system-arm."""

    family: ClassVar[str] = "mps"
    # `qemu-system-arm -M <machine>`: the ELF through -kernel, the model where the board reads it.
    qemu_binary: ClassVar[str | None] = "qemu-system-arm"
    qemu_package: ClassVar[str] = "qemu-system-arm"

    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> FlashReport:
        raise PlatformError(f"{board.name} exists here only as a QEMU machine; run it with --emulate, "
                            "or profile the real part through its stm32 row (stm32h743, stm32n657)")

    def reset(self, board: BoardProfile, port: str) -> None:
        self.flash(board, Path(), Path(), port)
