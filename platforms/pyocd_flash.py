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
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from platforms.flasher import Flasher, ToolStatus, register_flasher
from platforms.images import FlashImage, FlashRegion, image_file
from platforms.tools import PYOCD, run_tool

_PROGRAMMED = re.compile(r"programmed (\d+) bytes")


def _target_args(target: str, probe: str | None) -> list[str]:
    return ["-t", target] + (["-u", probe] if probe else [])


def flash_elf_args(target: str, probe: str | None, elf: Path, reset: bool) -> list[str]:
    """`pyocd flash` for an ELF (the addresses are in the file)."""
    return ["flash", "-v", *_target_args(target, probe), "-O", "smart_flash=true",
            *([] if reset else ["--no-reset"]), str(elf)]


def flash_bin_args(target: str, probe: str | None, path: Path, address: int, reset: bool) -> list[str]:
    """`pyocd flash --base-address` for a raw binary such as the model."""
    return ["flash", "-v", *_target_args(target, probe), "-O", "smart_flash=true",
            "--base-address", f"0x{address:08x}", "--format", "bin",
            *([] if reset else ["--no-reset"]), str(path)]


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


@register_flasher
class PyOcdFlasher(Flasher):
    """One `pyocd flash` per image (an ELF as it is, a binary at its base address); the last one resets."""

    name: ClassVar[str] = "pyocd"

    @classmethod
    def status(cls) -> ToolStatus:
        return PYOCD.status("pyocd (flasher)")

    def write(self, images: Sequence[FlashImage]) -> tuple[FlashRegion, ...]:
        target, probe = self.board.flash_target, self.options.probe
        regions = []
        with tempfile.TemporaryDirectory(prefix="tiny-profiler-pyocd-") as tmp:
            for index, image in enumerate(images):
                source = image_file(image, Path(tmp))
                last = index == len(images) - 1
                args = (flash_elf_args(target, probe, source, reset=last) if image.elf
                        else flash_bin_args(target, probe, source, image.address, reset=last))
                result = run_tool(PYOCD, args, f"pyOCD could not flash the {image.name} of {self.board.name}",
                                  _next_step(target))
                regions.append(FlashRegion(image.name, image.address, len(image.data),
                                           written(result.stdout + result.stderr)))
        return tuple(regions)

    def reset(self) -> None:
        target = self.board.flash_target
        run_tool(PYOCD, reset_args(target, self.options.probe), f"pyOCD could not reset {self.board.name}",
                 _next_step(target))
