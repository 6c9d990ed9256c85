"""STM32 family: Cortex-M boards flashed through a debug probe or the ROM DFU bootloader,
emulated by qemu-system-arm.

Flashers (board default: pyOCD; choose another with `--flasher` or the hardware map):

- `pyocd`: `pyocd flash -t TARGET` for the firmware ELF, then with
  `--base-address MODEL_ADDR --format bin` for the model; smart flash skips
  identical pages (see platforms/pyocd_flash.py).
- `openocd`: one OpenOCD run, `program FILE preverify verify` per image
  (see platforms/openocd.py).
- `st-flash`: stlink-tools; each image is read back with `st-flash read` and
  compared (sha256) first, and only images that differ are written.
- `dfu`: the ROM bootloader over USB (0483:df11) when no probe is attached
  (see platforms/dfu.py).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import ClassVar

from platforms import dfu, openocd, pyocd_flash
from platforms.base import FlashRegion, FlashReport, PlatformAdapter, log_report, register
from platforms.boards import BoardProfile
from platforms.images import FlashImage, elf_flash_image
from platforms.tools import ST_FLASH, run_tool
from profiler.emulator import QemuBoard, QemuSpec
from profiler.firmware import Toolchain


@register
class Stm32Adapter(PlatformAdapter):
    """STM32 boards; the emulated one is QEMU's netduinoplus2 (STM32F405)."""

    family: ClassVar[str] = "stm32"
    toolchain: ClassVar[Toolchain] = Toolchain("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    flashers: ClassVar[tuple[str, ...]] = ("pyocd", "openocd", "st-flash", "dfu")

    def images(self, board: BoardProfile, firmware_elf: Path, model: Path) -> list[FlashImage]:
        """Firmware (from the ELF's flash segments) and model, at their flash addresses."""
        return [
            elf_flash_image(firmware_elf, board.flash_base, board.flash_bytes),
            FlashImage("model", board.model_addr, model.read_bytes()),
        ]

    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> FlashReport:
        flasher = self.flasher_for(board)
        probe = self.options.probe
        if flasher == "pyocd":
            model_size = model.stat().st_size
            firmware = elf_flash_image(firmware_elf, board.flash_base, board.flash_bytes)
            steps = [
                ("firmware", firmware.address, len(firmware.data),
                 pyocd_flash.flash_elf_args(board.flash_target, probe, firmware_elf, reset=False)),
                ("model", board.model_addr, model_size,
                 pyocd_flash.flash_bin_args(board.flash_target, probe, model, board.model_addr, reset=True)),
            ]  # fmt: skip
            regions = pyocd_flash.flash(board.flash_target, probe, steps, board.name)
        elif flasher == "openocd":
            firmware = elf_flash_image(firmware_elf, board.flash_base, board.flash_bytes)
            files = [
                openocd.OpenOcdImage("firmware", firmware_elf, firmware.address, len(firmware.data), raw=False),
                openocd.OpenOcdImage("model", model, board.model_addr, model.stat().st_size, raw=True),
            ]
            regions = openocd.program(self._openocd_config(board), probe, files, board.name)
        elif flasher == "st-flash":
            regions = self._st_flash(board, self.images(board, firmware_elf, model))
        else:
            device = dfu.DfuSe(dfu.find_device(self.options.usb_serial)).open()
            regions = dfu.flash_images(device, self.images(board, firmware_elf, model), board.firmware_addr)
        return log_report(board, FlashReport(flasher, regions))

    def reset(self, board: BoardProfile, port: str) -> None:
        flasher = self.flasher_for(board)
        if flasher == "pyocd":
            pyocd_flash.reset(board.flash_target, self.options.probe, board.name)
        elif flasher == "openocd":
            openocd.reset(self._openocd_config(board), self.options.probe, board.name)
        elif flasher == "st-flash":
            run_tool(ST_FLASH, [*self._st_serial(), "reset"], f"st-flash could not reset {board.name}",
                     "check the ST-LINK cable")
        else:
            device = dfu.DfuSe(dfu.find_device(self.options.usb_serial)).open()
            device.leave(board.firmware_addr)

    def _openocd_config(self, board: BoardProfile) -> tuple[str, ...]:
        return self.options.openocd_config or board.openocd_config

    def _st_serial(self) -> list[str]:
        return ["--serial", self.options.probe] if self.options.probe else []

    def _st_flash(self, board: BoardProfile, images: list[FlashImage]) -> tuple[FlashRegion, ...]:
        regions = []
        next_step = "check the ST-LINK cable and `st-info --probe`"
        with tempfile.TemporaryDirectory(prefix="tiny-profiler-stflash-") as tmp:
            for image in images:
                readback = Path(tmp) / f"{image.name}.read"
                run_tool(ST_FLASH, [*self._st_serial(), "read", str(readback), f"0x{image.address:08x}",
                                    str(len(image.data))],
                         f"st-flash could not read back the {image.name} of {board.name}", next_step)  # fmt: skip
                same = hashlib.sha256(readback.read_bytes()).digest() == hashlib.sha256(image.data).digest()
                if not same:
                    source = Path(tmp) / f"{image.name}.bin"
                    source.write_bytes(image.data)
                    run_tool(ST_FLASH, [*self._st_serial(), "write", str(source), f"0x{image.address:08x}"],
                             f"st-flash could not write the {image.name} of {board.name}", next_step)
                regions.append(FlashRegion(image.name, image.address, len(image.data), written=not same))
        run_tool(ST_FLASH, [*self._st_serial(), "reset"], f"st-flash could not reset {board.name}", next_step)
        return tuple(regions)

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
