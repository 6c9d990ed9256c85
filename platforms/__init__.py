"""Platform adapters (one module per chip family) and the board profiles."""

from platforms.base import (
    FlashOptions,
    FlashRegion,
    FlashReport,
    PlatformAdapter,
    adapter_for,
    register,
    registered_families,
)
from platforms.boards import BoardProfile, board_names, boards_of, families, resolve_board

__all__ = [
    "BoardProfile",
    "FlashOptions",
    "FlashRegion",
    "FlashReport",
    "PlatformAdapter",
    "adapter_for",
    "board_names",
    "boards_of",
    "families",
    "register",
    "registered_families",
    "resolve_board",
]
