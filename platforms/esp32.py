"""ESP32 family (ESP32, ESP32-S3, ESP32-C3): flashed with the esptool library over the ROM serial bootloader.

Flashing is the esptool flasher's (platforms/esptool_flash.py); after its reset
`open_link` waits for the port to come back, finding it again by USB serial
number when USB re-enumeration renamed it.

Images: a bare-metal port (esp32c3) is one ELF turned into an image by
esptool's `elf2image` and written at the board's firmware address; an
ESP-IDF build (esp32, esp32s3) brings `flasher_args.json` listing its
bootloader, partition table and app, and the model partition's offset is
read from the partition table.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import ClassVar

from platforms import esp_qemu
from platforms.base import FlashOptions, FlashReport, PlatformAdapter, register
from platforms.boards import BoardProfile
from platforms.esptool_flash import EsptoolFlasher, first_line, quiet_esptool
from platforms.flasher import Flasher
from platforms.images import FlashImage
from platforms.serial_ports import usb_serial_of, wait_for_port
from profiler.emulator import QemuBoard
from profiler.errors import ConfigError, PlatformError, ToolMissing
from profiler.firmware import FIRMWARE_DIR, FirmwareImage, cache_dir, ensure_firmware, inspect_elf

PORT_RETURN_TIMEOUT_S = 10.0


def partition_offset(table: bytes, label: str) -> tuple[int, int] | None:
    """(offset, size) of the partition named `label` in an ESP-IDF binary partition table."""
    for start in range(0, len(table) - 31, 32):
        magic, _kind, _subtype, offset, size = struct.unpack_from("<HBBII", table, start)
        if magic != 0x50AA:
            break
        name = table[start + 12 : start + 28].split(b"\0")[0].decode("ascii", "replace")
        if name == label:
            return offset, size
    return None


@register
class Esp32Adapter(PlatformAdapter):
    """Espressif chips through the esptool library; emulated only on Espressif's QEMU fork (platforms.esp_qemu)."""

    family: ClassVar[str] = "esp32"
    flashers: ClassVar[tuple[str, ...]] = (EsptoolFlasher.name,)
    connect_attempts: int = 7  # esptool's default number of reset-and-sync attempts

    def __init__(self, options: FlashOptions | None = None) -> None:
        super().__init__(options)
        self._usb_serial: dict[str, str] = {}

    # -- firmware -----------------------------------------------------------

    def firmware(self, board: BoardProfile, kernels: str | None = None) -> FirmwareImage:
        port = self.port_of(board)
        port_dir = FIRMWARE_DIR / "ports" / port
        if (port_dir / "CMakeLists.txt").is_file():
            if kernels not in (None, "portable"):
                raise ConfigError(f"kernels {kernels!r} are not built for {board.name} (ESP-IDF); "
                                  "choose one of: portable")
            return self._idf_firmware(board, port_dir)
        return ensure_firmware(port, kernels=kernels)

    def _idf_firmware(self, board: BoardProfile, port_dir: Path) -> FirmwareImage:
        port = port_dir.name
        idf = shutil.which("idf.py")
        if idf is None:
            raise ToolMissing(
                f"idf.py is not on PATH ({board.name} firmware is an ESP-IDF project); install ESP-IDF and "
                "source its export.sh, or flash the board yourself and pass --no-flash --port PORT"
            )
        digest = hashlib.sha256()
        for path in sorted(p for root in (FIRMWARE_DIR / "core", port_dir) for p in root.rglob("*")
                           if p.is_file() and "build" not in p.relative_to(root).parts[:1]):
            digest.update(str(path.relative_to(FIRMWARE_DIR)).encode() + b"\0" + path.read_bytes())
        firmware_id = f"{port}-{board.flash_target}-{digest.hexdigest()[:12]}"
        build = cache_dir() / firmware_id
        args_file = build / "flasher_args.json"
        if not args_file.is_file():
            result = subprocess.run(
                [idf, "-C", str(port_dir), "-B", str(build), f"-DIDF_TARGET={board.flash_target}",
                 f"-DFIRMWARE_ID={firmware_id}", "build"],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
                raise PlatformError(f"idf.py build of {board.name} failed: {tail[0]}; run idf.py build in "
                                    f"{port_dir} to see the full log")
        description = json.loads((build / "project_description.json").read_text())
        return inspect_elf(port, firmware_id, build / description["app_elf"])

    def images(self, board: BoardProfile, firmware_elf: Path, model: Path) -> list[FlashImage]:
        """What goes to flash and where: firmware image(s), then the model in its partition."""
        build = firmware_elf.parent
        model_addr = board.model_addr
        args_file = build / "flasher_args.json"
        if args_file.is_file():  # an ESP-IDF build: bootloader, partition table, app
            flash_files = json.loads(args_file.read_text())["flash_files"]
            images = [FlashImage(Path(name).stem, int(offset, 16), (build / name).read_bytes())
                      for offset, name in sorted(flash_files.items(), key=lambda kv: int(kv[0], 16))]
            table = next((i for i in images if "partition" in i.name), None)
            found = partition_offset(table.data, board.model_partition or "model") if table else None
            if found:
                model_addr = found[0]
        else:
            prebuilt = firmware_elf.with_suffix(".bin")
            data = prebuilt.read_bytes() if prebuilt.is_file() else self.elf2image(board, firmware_elf)
            images = [FlashImage("firmware", board.firmware_addr, data)]
        return [*images, FlashImage("model", model_addr, model.read_bytes())]

    @staticmethod
    def elf2image(board: BoardProfile, elf: Path) -> bytes:
        """esptool's elf2image for the board's chip, in memory."""
        from esptool.cmds import elf2image

        size = f"{board.flash_bytes // (1024 * 1024)}MB"
        with quiet_esptool():
            try:
                image = elf2image(str(elf), board.flash_target, output=None, flash_mode="dio", flash_size=size)
            except Exception as exc:  # esptool raises FatalError and plain errors for bad ELFs
                raise PlatformError(f"esptool elf2image of {elf} failed: {first_line(exc)}; rebuild the "
                                    "firmware") from exc
        assert isinstance(image, bytes)
        return image

    # -- flashing ----------------------------------------------------------

    def make_flasher(self, board: BoardProfile, port: str) -> Flasher:
        flasher = super().make_flasher(board, port)
        if isinstance(flasher, EsptoolFlasher):
            flasher.connect_attempts = self.connect_attempts
        return flasher

    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> FlashReport:
        self.flasher_for(board)
        images = self.images(board, firmware_elf, model)
        self._remember_usb_serial(port)
        return self.write(board, port, images)

    # -- the link after a reset ---------------------------------------------

    def _remember_usb_serial(self, port: str) -> None:
        serial_number = self.options.usb_serial or usb_serial_of(port)
        if serial_number:
            self._usb_serial[port] = serial_number

    def open_link(self, board: BoardProfile, port: str) -> str:
        """The port after the reset: the same path, or the one the board re-enumerated as."""
        return wait_for_port(port, self._usb_serial.get(port) or self.options.usb_serial, PORT_RETURN_TIMEOUT_S)

    # -- emulation ----------------------------------------------------------

    def can_emulate(self, board: BoardProfile) -> bool:
        return esp_qemu.find_fork(board) is not None

    def emulate(self, board: BoardProfile, firmware_elf: Path, model: Path) -> QemuBoard:
        """Espressif's QEMU fork, booting from a whole-flash image of what flashing would write."""
        binary = esp_qemu.find_fork(board)
        if binary is None:
            raise PlatformError(f"{board.name} cannot be emulated: {esp_qemu.why_not(board)}")
        images = self.images(board, firmware_elf, model)
        return QemuBoard(esp_qemu.fork_spec(board, binary, images, cache_dir() / "esp-qemu"))

    def no_emulator_hint(self, board: BoardProfile) -> str:
        return esp_qemu.why_not(board)
