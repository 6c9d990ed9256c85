"""STM32 family: Cortex-M boards flashed through a debug probe, emulated by qemu-system-arm."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from platforms.base import PlatformAdapter, register
from platforms.boards import BoardProfile
from profiler.emulator import QemuBoard, QemuSpec
from profiler.errors import PlatformError
from profiler.firmware import Toolchain


@register
class Stm32Adapter(PlatformAdapter):
    """STM32 boards; the emulated one is QEMU's netduinoplus2 (STM32F405)."""

    family: ClassVar[str] = "stm32"
    toolchain: ClassVar[Toolchain] = Toolchain("arm-none-eabi-gcc", "gcc-arm-none-eabi")

    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> None:
        raise PlatformError(
            f"flashing a real {board.name} is not built yet; flash it yourself and pass "
            "--no-flash with --port, or use --emulate"
        )

    def reset(self, board: BoardProfile, port: str) -> None:
        raise PlatformError(f"resetting a real {board.name} is not built yet; press its reset button")

    def emulate(self, board: BoardProfile, firmware_elf: Path, model: Path) -> QemuBoard:
        if board.qemu_machine is None:
            return super().emulate(board, firmware_elf, model)
        spec = QemuSpec(
            binary="qemu-system-arm",
            debian_package="qemu-system-arm",
            machine=board.qemu_machine,
            kernel=firmware_elf,
            loads=((model, board.model_addr),),
        )
        return QemuBoard(spec)
