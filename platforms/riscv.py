"""RISC-V family: GD32VF103-class MCUs flashed through OpenOCD, and `riscv`, an rv32imac
board on `qemu-system-riscv32 -M virt`.

Flashing: the OpenOCD flasher (platforms/openocd.py), firmware ELF then the
model at its flash address, with the skip rule described there.
"""

from __future__ import annotations

from typing import ClassVar

from platforms.base import PlatformAdapter, register
from platforms.openocd import OpenOcdFlasher


@register
class RiscvAdapter(PlatformAdapter):
    """RISC-V MCUs through a JTAG probe and OpenOCD."""

    family: ClassVar[str] = "riscv"
    flashers: ClassVar[tuple[str, ...]] = (OpenOcdFlasher.name,)

    # `qemu-system-riscv32 -M virt -bios none`: the ELF loads into DRAM, the model into pflash0.
    qemu_binary: ClassVar[str | None] = "qemu-system-riscv32"
    qemu_package: ClassVar[str] = "qemu-system-misc"
    qemu_extra_args: ClassVar[tuple[str, ...]] = ("-bios", "none")
