"""The Flasher interface: one class per flashing tool, registered by name, shared between families.

An adapter lists the flasher names its boards accept (`PlatformAdapter.flashers`);
the bench picks one (`--flasher`, the hardware map) or the board row's default
applies. A flasher gets the images to write (platforms/images.py) and returns
which regions it wrote and which it found already in place. A new flasher is
one module with one `@register_flasher` class, plus its name in the adapters'
`flashers` tuples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from platforms.boards import BoardProfile
from platforms.images import FlashImage, FlashRegion

F = TypeVar("F", bound="type[Flasher]")
_FLASHERS: dict[str, type[Flasher]] = {}


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
class ToolStatus:
    """Whether what a flasher runs is on this machine (`tiny-profiler doctor` prints one row of it)."""

    what: str  # e.g. "openocd (flasher)"
    ok: bool
    detail: str  # the path or version found, or what is missing
    fix: str | None = None


class Flasher(ABC):
    """One flashing tool bound to one board, this bench's options and the board's port."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def status(cls) -> ToolStatus:
        """Whether the tool is installed here, and the one-line fix when it is not."""

    def __init__(self, board: BoardProfile, options: FlashOptions, port: str) -> None:
        self.board = board
        self.options = options
        self.port = port

    @abstractmethod
    def write(self, images: Sequence[FlashImage]) -> tuple[FlashRegion, ...]:
        """Write the images that differ from the board's flash, then leave the board running its firmware."""

    @abstractmethod
    def reset(self) -> None:
        """Reset the board so it boots the profiler firmware."""


def register_flasher(cls: F) -> F:
    """Class decorator adding a flasher to the registry by its name; a duplicate name raises."""
    if cls.name in _FLASHERS and _FLASHERS[cls.name] is not cls:
        raise ValueError(f"flasher {cls.name!r} registered twice")
    _FLASHERS[cls.name] = cls
    return cls


def flasher_class(name: str) -> type[Flasher]:
    """The flasher registered as `name` (the adapter that lists it imports its module)."""
    found = _FLASHERS.get(name)
    if found is None:
        raise ValueError(f"no flasher registered as {name!r}; registered: {', '.join(sorted(_FLASHERS))}")
    return found
