"""RISC-V family: GD32VF103-class MCUs flashed through OpenOCD, and `riscv`, an rv32imac
board on `qemu-system-riscv32 -M virt`.

Flashing: one OpenOCD run with `program FILE preverify verify` per image
(firmware ELF, then the model at its flash address); see platforms/openocd.py
for the skip rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from platforms import openocd
from platforms.base import FlashReport, PlatformAdapter, log_report, register
from platforms.boards import BoardProfile
from platforms.images import elf_flash_image
from profiler.emulator import QemuBoard, QemuSpec
from profiler.firmware import Toolchain


@register
class RiscvAdapter(PlatformAdapter):
    """RISC-V MCUs through a JTAG probe and OpenOCD."""

    family: ClassVar[str] = "riscv"
    toolchain: ClassVar[Toolchain] = Toolchain("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    flashers: ClassVar[tuple[str, ...]] = ("openocd",)

    def _config(self, board: BoardProfile) -> tuple[str, ...]:
        return self.options.openocd_config or board.openocd_config

    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> FlashReport:
        flasher = self.flasher_for(board)
        firmware = elf_flash_image(firmware_elf, board.flash_base, board.flash_bytes)
        files = [
            openocd.OpenOcdImage("firmware", firmware_elf, firmware.address, len(firmware.data), raw=False),
            openocd.OpenOcdImage("model", model, board.model_addr, model.stat().st_size, raw=True),
        ]
        regions = openocd.program(self._config(board), self.options.probe, files, board.name)
        return log_report(board, FlashReport(flasher, regions))

    def reset(self, board: BoardProfile, port: str) -> None:
        self.flasher_for(board)
        openocd.reset(self._config(board), self.options.probe, board.name)

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
