"""RISC-V family: GD32VF103-class MCUs flashed through OpenOCD, and `riscv`, an rv32imac
board on `qemu-system-riscv32 -M virt`.

Flashing: the OpenOCD flasher (platforms/openocd.py), firmware ELF then the
model at its flash address, with the skip rule described there.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from platforms.base import PlatformAdapter, register
from platforms.boards import BoardProfile
from platforms.openocd import OpenOcdFlasher
from profiler.emulator import QemuBoard, QemuSpec


@register
class RiscvAdapter(PlatformAdapter):
    """RISC-V MCUs through a JTAG probe and OpenOCD."""

    family: ClassVar[str] = "riscv"
    flashers: ClassVar[tuple[str, ...]] = (OpenOcdFlasher.name,)

    def emulate(self, board: BoardProfile, firmware_elf: Path, model: Path) -> QemuBoard:
        """`qemu-system-riscv32 -M virt -bios none`: the ELF loads into DRAM, the model into pflash0."""
        if board.qemu_machine is None:
            return super().emulate(board, firmware_elf, model)
        spec = QemuSpec(
            binary="qemu-system-riscv32",
            debian_package="qemu-system-misc",
            machine=board.qemu_machine,
            kernel=firmware_elf,
            loads=((model, board.model_addr),),
            extra_args=("-bios", "none"),
        )
        return QemuBoard(spec)
