"""Board profiles: what a board is, as data.

A new board is one row here. Chip-family behaviour (how to flash, reset,
emulate) lives in the family's adapter module, never in this table's users.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.errors import ConfigError


@dataclass(frozen=True)
class BoardProfile:
    """Facts of one board; the session and sinks read these, never board names."""

    name: str
    family: str
    core: str
    clock_hz: int
    sram_bytes: int
    flash_bytes: int
    model_addr: int
    model_region_bytes: int
    firmware_port: str
    baud: int = 115200
    reset_method: str = "probe"
    flasher: str = ""
    usb_vid_pid: tuple[int, int] | None = None
    qemu_machine: str | None = None
    aliases: tuple[str, ...] = ()


BOARDS: tuple[BoardProfile, ...] = (
    BoardProfile(
        name="stm32f405",
        family="stm32",
        core="cortex-m4f",
        clock_hz=168_000_000,
        sram_bytes=128 * 1024,
        flash_bytes=1024 * 1024,
        model_addr=0x0802_0000,
        model_region_bytes=896 * 1024,
        firmware_port="stm32f4",
        reset_method="probe",
        flasher="pyocd",
        usb_vid_pid=(0x0483, 0x374B),  # ST-LINK/V2-1 on Nucleo boards
        qemu_machine="netduinoplus2",
        aliases=("stm32", "netduinoplus2"),
    ),
)


def board_names() -> list[str]:
    """Every name `--device` accepts, board names first."""
    return [b.name for b in BOARDS] + [alias for b in BOARDS for alias in b.aliases]


def resolve_board(name: str) -> BoardProfile:
    """The profile for a board name or alias (a family name picks its default board)."""
    wanted = name.strip().lower()
    for board in BOARDS:
        if wanted == board.name or wanted in board.aliases:
            return board
    raise ConfigError(
        f"unknown device {name!r}; known devices: {', '.join(board_names())}"
    )
