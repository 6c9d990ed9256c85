"""pyOCD as a command-line flasher (the `[lab]` extra installs it).

Skip rule: pyOCD's smart flash (`-O smart_flash=true`, its default, stated
explicitly): before erasing, pyOCD runs a CRC-32 analyzer in target RAM over
every flash page the image touches, confirms matching pages by reading them
back, and erases and programs only the pages that differ. Its summary line
(`... programmed N bytes (...), identical M bytes ...`) tells us whether an
image was written; `programmed 0 bytes` means it was already there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from platforms.base import FlashRegion
from platforms.tools import PYOCD, run_tool

_PROGRAMMED = re.compile(r"programmed (\d+) bytes")


def _target_args(target: str, probe: str | None) -> list[str]:
    return ["-t", target] + (["-u", probe] if probe else [])


def flash_elf_args(target: str, probe: str | None, elf: Path, reset: bool) -> list[str]:
    """`pyocd flash` for an ELF (the addresses are in the file)."""
    return ["flash", "-v", *_target_args(target, probe), "-O", "smart_flash=true",
            *([] if reset else ["--no-reset"]), str(elf)]  # fmt: skip


def flash_bin_args(target: str, probe: str | None, path: Path, address: int, reset: bool) -> list[str]:
    """`pyocd flash --base-address` for a raw binary such as the model."""
    return ["flash", "-v", *_target_args(target, probe), "-O", "smart_flash=true",
            "--base-address", f"0x{address:08x}", "--format", "bin",
            *([] if reset else ["--no-reset"]), str(path)]  # fmt: skip


def reset_args(target: str, probe: str | None) -> list[str]:
    """`pyocd reset`: a hardware or software reset through the probe, then run."""
    return ["reset", *_target_args(target, probe)]


def written(output: str) -> bool:
    """False when pyOCD's summary says it programmed nothing (every page identical)."""
    counts = [int(n) for n in _PROGRAMMED.findall(output)]
    return not counts or any(counts)


def _next_step(target: str) -> str:
    return (f"check the probe with `pyocd list` (an unknown target type needs "
            f"`pyocd pack install {target.removesuffix('tx').removesuffix('xx')}`)")


def flash(target: str, probe: str | None, steps: Sequence[tuple[str, int, int, list[str]]],
          board_name: str) -> tuple[FlashRegion, ...]:
    """Run one `pyocd flash` per (name, address, size, args) step; report which ones wrote."""
    regions = []
    for name, address, size, args in steps:
        result = run_tool(PYOCD, args, f"pyOCD could not flash the {name} of {board_name}", _next_step(target))
        regions.append(FlashRegion(name, address, size, written(result.stdout + result.stderr)))
    return tuple(regions)


def reset(target: str, probe: str | None, board_name: str) -> None:
    """Reset through the probe."""
    run_tool(PYOCD, reset_args(target, probe), f"pyOCD could not reset {board_name}", _next_step(target))
