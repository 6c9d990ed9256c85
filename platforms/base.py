"""The platform adapter interface and its one registry.

An adapter knows how to put firmware and a model on a board of its chip
family and how to reach its UART: `flash`, `reset`, `open_link` for hardware,
`emulate` for boards QEMU can run. Flashing goes through the board's flasher
(platforms/flasher.py), chosen by name. Core code never lists families by
string: every adapter, ours included, is found through the
`tiny_profiler.platforms` entry point group (pyproject.toml), so this module
imports none of its children.
"""

from __future__ import annotations

import logging
from abc import ABC
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar, TypeVar

from platforms.boards import BoardProfile
from platforms.flasher import Flasher, FlashOptions, flasher_class
from platforms.images import FlashImage, FlashRegion, elf_flash_image, raw_image
from profiler.emulator import QemuBoard, QemuSpec
from profiler.errors import ConfigError, PlatformError
from profiler.firmware import FirmwareImage, ensure_firmware

__all__ = ["FlashOptions", "FlashRegion", "FlashReport", "PlatformAdapter", "adapter_for", "register"]

_REGISTRY: dict[str, type[PlatformAdapter]] = {}
_ENTRY_POINT_GROUP = "tiny_profiler.platforms"
_loaded = False
A = TypeVar("A", bound="type[PlatformAdapter]")
log = logging.getLogger("tiny_profiler.flash")


@dataclass(frozen=True)
class FlashReport:
    """What a flash call did: which regions it wrote and which it skipped because they matched."""

    flasher: str
    regions: tuple[FlashRegion, ...]

    @property
    def bytes_written(self) -> int:
        """Bytes of the images that had to be written."""
        return sum(r.size for r in self.regions if r.written)

    @property
    def skipped(self) -> tuple[str, ...]:
        """Names of the images already on the board."""
        return tuple(r.name for r in self.regions if not r.written)

    def summary(self) -> str:
        """One line for logs and the console."""
        parts = [
            f"{r.name} {r.size:,} B at 0x{r.address:08x} {'written' if r.written else 'already there, skipped'}"
            for r in self.regions
        ]
        return f"{self.flasher}: " + "; ".join(parts)


class PlatformAdapter(ABC):
    """How to flash, reset, reach and emulate the boards of one chip family."""

    family: ClassVar[str]
    flashers: ClassVar[tuple[str, ...]] = ()  # names of registered flashers (platforms/flasher.py)
    # The QEMU system emulator a row with a `qemu_machine` runs on: the ELF through -kernel, the model
    # loaded where flashing puts it. None: the family emulates its own way, or not at all.
    qemu_binary: ClassVar[str | None] = None
    qemu_package: ClassVar[str] = ""  # the Debian package that installs qemu_binary
    qemu_extra_args: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: FlashOptions | None = None) -> None:
        self.options = options or FlashOptions()

    def flasher_for(self, board: BoardProfile) -> str:
        """The flasher to use: the bench's choice, else the board's default."""
        chosen = self.options.flasher or board.flasher
        if chosen not in self.flashers:
            raise ConfigError(
                f"{board.name} cannot be flashed with {chosen or 'nothing'}; "
                f"choose --flasher {' or '.join(self.flashers) or '(none: emulated only)'}"
            )
        return chosen

    @staticmethod
    def port_of(board: BoardProfile) -> str:
        """The board's firmware port, or PlatformError with the row's reason it has none."""
        if board.firmware_port is None:
            raise PlatformError(f"{board.name} has no firmware port yet: {board.no_port_reason}")
        return board.firmware_port

    def firmware(self, board: BoardProfile, kernels: str | None = None) -> FirmwareImage:
        """The firmware image for the board (matmul kernel set: the port's default for None), built on first use
        with the toolchain its port.mk names."""
        return ensure_firmware(self.port_of(board), kernels=kernels)

    def images(self, board: BoardProfile, firmware_elf: Path, model: Path) -> list[FlashImage]:
        """Firmware (from the ELF's flash segments) and model, at their flash addresses."""
        return [
            elf_flash_image(firmware_elf, board.flash_base, board.flash_bytes),
            raw_image("model", board.model_addr, model),
        ]

    def make_flasher(self, board: BoardProfile, port: str) -> Flasher:
        """The board's flasher (see `flasher_for`), bound to this bench's options and the board's port."""
        return flasher_class(self.flasher_for(board))(board, self.options, port)

    def write(self, board: BoardProfile, port: str, images: Sequence[FlashImage]) -> FlashReport:
        """Hand the images to the board's flasher and log what it wrote."""
        flasher = self.make_flasher(board, port)
        return log_report(board, FlashReport(flasher.name, flasher.write(images)))

    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> FlashReport:
        """Write firmware and model to a real board, skipping images already there."""
        self.flasher_for(board)
        return self.write(board, port, self.images(board, firmware_elf, model))

    def reset(self, board: BoardProfile, port: str) -> None:
        """Reset a real board so it boots the profiler firmware and sends HELLO."""
        self.make_flasher(board, port).reset()

    def emulate(self, board: BoardProfile, firmware_elf: Path, model: Path) -> QemuBoard:
        """An emulated board with firmware and model loaded where flashing puts them."""
        if board.qemu_machine is None or self.qemu_binary is None:
            raise PlatformError(f"{board.name} has no emulator; {self.no_emulator_hint(board)}")
        spec = QemuSpec(
            binary=self.qemu_binary,
            debian_package=self.qemu_package,
            machine=board.qemu_machine,
            kernel=firmware_elf,
            loads=((model, board.model_addr),),
            extra_args=self.qemu_extra_args,
        )
        return QemuBoard(spec)

    def open_link(self, board: BoardProfile, port: str) -> str:
        """The pyserial URL of the board's profiler UART (a device path is a URL too)."""
        return port

    def can_emulate(self, board: BoardProfile) -> bool:
        """Whether `emulate` can run this board on this machine."""
        return board.qemu_machine is not None

    def no_emulator_hint(self, board: BoardProfile) -> str:
        """Why the board cannot be emulated here and what to do instead."""
        return "connect the board and pass --port"


def register(cls: A) -> A:
    """Class decorator adding an adapter to the registry; a duplicate family raises."""
    family = cls.family
    if family in _REGISTRY and _REGISTRY[family] is not cls:
        raise ValueError(f"platform family {family!r} registered twice")
    _REGISTRY[family] = cls
    return cls


def _load_adapters() -> None:
    """Load every adapter named in the entry point group (loading one runs its @register)."""
    global _loaded
    if _loaded:
        return
    for entry in entry_points(group=_ENTRY_POINT_GROUP):
        entry.load()
    _loaded = True


def registered_families() -> list[str]:
    """Families with an adapter."""
    _load_adapters()
    return sorted(_REGISTRY)


def adapter_for(board: BoardProfile, options: FlashOptions | None = None) -> PlatformAdapter:
    """The adapter of the board's family, set up with this bench's options."""
    _load_adapters()
    factory: Callable[[FlashOptions | None], PlatformAdapter] | None = _REGISTRY.get(board.family)
    if factory is None:
        raise ConfigError(
            f"no platform adapter for family {board.family!r} (board {board.name}); "
            f"installed: {', '.join(sorted(_REGISTRY)) or 'none (reinstall the package: pip install -e .)'}"
        )
    return factory(options)


def log_report(board: BoardProfile, report: FlashReport) -> FlashReport:
    """Log a flash report (the structured log carries its fields) and return it."""
    log.info("flash %s: %s", board.name, report.summary(),
             extra={"flasher": report.flasher, "bytes_written": report.bytes_written,
                    "skipped": list(report.skipped)})
    return report
