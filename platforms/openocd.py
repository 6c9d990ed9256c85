"""OpenOCD command lines, shared by the families flashed through a JTAG/SWD probe.

Skip rule: each image goes through OpenOCD's `program FILE preverify verify`.
`preverify` runs `verify_image` first (a CRC-32 computed on the target by a
small algorithm, falling back to a binary read-back compare) and skips the
write when the flash already holds the image; OpenOCD then prints
`**Verified OK - No flashing**`, which is how we report the skip.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from platforms.flasher import Flasher, ToolStatus, register_flasher
from platforms.images import FlashImage, FlashRegion, image_file
from platforms.tools import OPENOCD, run_tool

SKIPPED = "**Verified OK - No flashing**"
PROGRAMMED = "** Programming Started **"


@dataclass(frozen=True)
class OpenOcdImage:
    """A file OpenOCD programs: an ELF (addresses inside) or a raw binary at `address`."""

    name: str
    path: Path
    address: int
    size: int
    raw: bool


def _tcl_path(path: Path) -> str:
    # Braces keep spaces and brackets literal in Tcl.
    return "{" + str(path) + "}"


def config_args(config: Sequence[str], probe: str | None) -> list[str]:
    """`-f interface -c 'adapter serial X' -f target ...`: the probe is picked before the target is set up."""
    args: list[str] = []
    for index, script in enumerate(config):
        args += ["-f", script]
        if index == 0 and probe:
            args += ["-c", f"adapter serial {probe}"]
    return args


def program_args(config: Sequence[str], probe: str | None, images: Sequence[OpenOcdImage]) -> list[str]:
    """One OpenOCD run that programs every image (skipping those already there), then resets and exits."""
    args = config_args(config, probe)
    for index, image in enumerate(images):
        words = ["program", _tcl_path(image.path), "preverify", "verify"]
        if index == len(images) - 1:
            words += ["reset", "exit"]
        if image.raw:
            words.append(f"0x{image.address:08x}")
        args += ["-c", " ".join(words)]
    return args


def reset_args(config: Sequence[str], probe: str | None) -> list[str]:
    """Reset the target and let it run."""
    return [*config_args(config, probe), "-c", "init", "-c", "reset run", "-c", "shutdown"]


def program(config: Sequence[str], probe: str | None, images: Sequence[OpenOcdImage],
            board_name: str) -> tuple[FlashRegion, ...]:
    """Program the images; which ones were skipped is read from OpenOCD's own messages."""
    result = run_tool(
        OPENOCD, program_args(config, probe, images), f"OpenOCD could not flash {board_name}",
        "check the probe's cable and power, and its OpenOCD scripts (openocd_config in the hardware map)",
    )
    output = result.stdout + result.stderr
    outcomes = [line for line in output.splitlines() if SKIPPED in line or PROGRAMMED in line]
    regions = []
    for index, image in enumerate(images):
        skipped = index < len(outcomes) and SKIPPED in outcomes[index]
        regions.append(FlashRegion(image.name, image.address, image.size, written=not skipped))
    return tuple(regions)


def reset(config: Sequence[str], probe: str | None, board_name: str) -> None:
    """Reset through the probe."""
    run_tool(OPENOCD, reset_args(config, probe), f"OpenOCD could not reset {board_name}",
             "check the probe's cable and power")


@register_flasher
class OpenOcdFlasher(Flasher):
    """One OpenOCD run for all images, with the bench's scripts or else the board row's."""

    name: ClassVar[str] = "openocd"

    @classmethod
    def status(cls) -> ToolStatus:
        return OPENOCD.status("openocd (flasher)")

    def _config(self) -> tuple[str, ...]:
        return self.options.openocd_config or self.board.openocd_config

    def write(self, images: Sequence[FlashImage]) -> tuple[FlashRegion, ...]:
        with tempfile.TemporaryDirectory(prefix="tiny-profiler-openocd-") as tmp:
            files = [OpenOcdImage(image.name, image_file(image, Path(tmp)), image.address, len(image.data),
                                  raw=not image.elf) for image in images]
            return program(self._config(), self.options.probe, files, self.board.name)

    def reset(self) -> None:
        reset(self._config(), self.options.probe, self.board.name)
