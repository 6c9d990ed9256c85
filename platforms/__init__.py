"""Platform adapters (one module per chip family) and the board profiles."""

from platforms.base import PlatformAdapter, adapter_for, register, registered_families
from platforms.boards import BoardProfile, board_names, resolve_board

__all__ = [
    "BoardProfile",
    "PlatformAdapter",
    "adapter_for",
    "board_names",
    "register",
    "registered_families",
    "resolve_board",
]
