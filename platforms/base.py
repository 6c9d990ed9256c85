"""The platform adapter interface and its one registry.

An adapter knows how to put firmware and a model on a board of its chip
family and how to reach its UART: `flash`, `reset`, `open_link` for hardware,
`emulate` for boards QEMU can run. Core code never lists families by string;
third-party adapters register through the `tiny_profiler.platforms` entry point
group.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar, TypeVar

from platforms.boards import BoardProfile
from profiler.emulator import QemuBoard
from profiler.errors import ConfigError, PlatformError
from profiler.firmware import FirmwareImage, Toolchain, ensure_firmware

_REGISTRY: dict[str, type[PlatformAdapter]] = {}
_ENTRY_POINT_GROUP = "tiny_profiler.platforms"
A = TypeVar("A", bound="type[PlatformAdapter]")
log = logging.getLogger("tiny_profiler.flash")


@dataclass(frozen=True)
class FlashOptions:
    """How this bench reaches one board; each field overrides the board profile's default."""

    flasher: str | None = None  # one of the adapter's `flashers`
    probe: str | None = None  # debug probe serial number / pyOCD unique id
    reset_method: str | None = None  # dtr-rts | usb-jtag | manual | probe
    usb_serial: str | None = None  # the board's USB serial number: finds its port again after re-enumeration
    openocd_config: tuple[str, ...] = ()  # OpenOCD -f scripts (interface, target)
    flash_baud: int | None = None  # esptool: baud rate while flashing


@dataclass(frozen=True)
class FlashRegion:
    """One image written (or found already in place) at one address."""

    name: str
    address: int
    size: int
    written: bool


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
    toolchain: ClassVar[Toolchain]
    flashers: ClassVar[tuple[str, ...]] = ()

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

    def firmware(self, board: BoardProfile, kernels: str | None = None) -> FirmwareImage:
        """The firmware image for the board (matmul kernel set: the port's default for None), built on first use."""
        return ensure_firmware(board.firmware_port, self.toolchain, kernels)

    @abstractmethod
    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> FlashReport:
        """Write firmware and model to a real board, skipping images already there."""

    @abstractmethod
    def reset(self, board: BoardProfile, port: str) -> None:
        """Reset a real board so it boots the profiler firmware and sends HELLO."""

    def open_link(self, board: BoardProfile, port: str) -> str:
        """The pyserial URL of the board's profiler UART (a device path is a URL too)."""
        return port

    def emulate(self, board: BoardProfile, firmware_elf: Path, model: Path) -> QemuBoard:
        """An emulated board with firmware and model loaded where flashing puts them."""
        raise PlatformError(f"{board.name} has no emulator; {self.no_emulator_hint(board)}")

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


def _load_builtin_and_plugins() -> None:
    # Import for the side effect of @register; plugins come from entry points.
    import platforms.esp32
    import platforms.mps
    import platforms.riscv
    import platforms.stm32  # noqa: F401

    for entry in entry_points(group=_ENTRY_POINT_GROUP):
        entry.load()


def registered_families() -> list[str]:
    """Families with an adapter."""
    _load_builtin_and_plugins()
    return sorted(_REGISTRY)


def adapter_for(board: BoardProfile, options: FlashOptions | None = None) -> PlatformAdapter:
    """The adapter of the board's family, set up with this bench's options."""
    _load_builtin_and_plugins()
    factory: Callable[[FlashOptions | None], PlatformAdapter] | None = _REGISTRY.get(board.family)
    if factory is None:
        raise ConfigError(
            f"no platform adapter for family {board.family!r} (board {board.name}); "
            f"installed: {', '.join(sorted(_REGISTRY))}"
        )
    return factory(options)


def log_report(board: BoardProfile, report: FlashReport) -> FlashReport:
    """Log a flash report (the structured log carries its fields) and return it."""
    log.info("flash %s: %s", board.name, report.summary(),
             extra={"flasher": report.flasher, "bytes_written": report.bytes_written,
                    "skipped": list(report.skipped)})
    return report
