"""The platform adapter interface and its one registry.

An adapter knows how to put firmware and a model on a board of its chip
family and how to reach its UART: `flash`, `reset`, `open_link` for hardware,
`emulate` for boards QEMU can run. Core code never lists families by string;
third-party adapters register through the `tiny_profiler.platforms` entry point
group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar, TypeVar

from platforms.boards import BoardProfile
from profiler.emulator import QemuBoard
from profiler.errors import ConfigError, PlatformError
from profiler.firmware import Toolchain

_REGISTRY: dict[str, type[PlatformAdapter]] = {}
_ENTRY_POINT_GROUP = "tiny_profiler.platforms"
A = TypeVar("A", bound="type[PlatformAdapter]")


class PlatformAdapter(ABC):
    """How to flash, reset, reach and emulate the boards of one chip family."""

    family: ClassVar[str]
    toolchain: ClassVar[Toolchain]

    @abstractmethod
    def flash(self, board: BoardProfile, firmware_elf: Path, model: Path, port: str) -> None:
        """Write firmware and model to a real board."""

    @abstractmethod
    def reset(self, board: BoardProfile, port: str) -> None:
        """Reset a real board so it boots the profiler firmware and sends HELLO."""

    def open_link(self, board: BoardProfile, port: str) -> str:
        """The pyserial URL of the board's profiler UART (a device path is a URL too)."""
        return port

    def emulate(self, board: BoardProfile, firmware_elf: Path, model: Path) -> QemuBoard:
        """An emulated board with firmware and model loaded where flashing puts them."""
        raise PlatformError(f"{board.name} has no emulator; connect the board and pass --port")


def register(cls: A) -> A:
    """Class decorator adding an adapter to the registry; a duplicate family raises."""
    family = cls.family
    if family in _REGISTRY and _REGISTRY[family] is not cls:
        raise ValueError(f"platform family {family!r} registered twice")
    _REGISTRY[family] = cls
    return cls


def _load_builtin_and_plugins() -> None:
    # Import for the side effect of @register; plugins come from entry points.
    import platforms.stm32  # noqa: F401

    for entry in entry_points(group=_ENTRY_POINT_GROUP):
        entry.load()


def registered_families() -> list[str]:
    """Families with an adapter."""
    _load_builtin_and_plugins()
    return sorted(_REGISTRY)


def adapter_for(board: BoardProfile) -> PlatformAdapter:
    """The adapter of the board's family."""
    _load_builtin_and_plugins()
    factory: Callable[[], PlatformAdapter] | None = _REGISTRY.get(board.family)
    if factory is None:
        raise ConfigError(
            f"no platform adapter for family {board.family!r} (board {board.name}); "
            f"installed: {', '.join(sorted(_REGISTRY))}"
        )
    return factory()
