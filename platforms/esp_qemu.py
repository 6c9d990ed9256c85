"""Espressif's QEMU fork: ESP32-family boards emulated when the fork is installed (detected, never assumed).

Debian's QEMU has no ESP32 machines. Espressif's fork, installed with ESP-IDF
(`idf_tools.py install qemu-xtensa qemu-riscv32`), adds `-M esp32` and
`esp32s3` to its qemu-system-xtensa and `esp32c3` to its qemu-system-riscv32.
Both binaries keep Debian's names, so the fork is found by asking every
binary of that name on PATH for its machine list, not by its name.

The fork emulates the chip's ROM, which boots from SPI flash as on the chip.
The board therefore gets one whole-flash image: exactly the images flashing
would write (the firmware at its offset, or an ESP-IDF build's bootloader,
partition table and app; the model in its partition), laid into erased
(0xFF) flash of the board's size and attached as its SPI flash
(`-drive if=mtd`).

Timing: the RISC-V ESP32-C3 machine runs with `-icount` like our other
emulated boards, so its device time is deterministic. The Xtensa machines run
without it, since the fork's instruction counting there is not known to work:
their device-timed rates follow the host's speed and their summaries carry no
instruction counts.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from platforms.boards import BoardProfile
from platforms.images import FlashImage
from profiler.emulator import DEFAULT_ICOUNT_SHIFT, QemuSpec
from profiler.errors import PlatformError

INSTALL_HINT = "install it with ESP-IDF (idf_tools.py install qemu-xtensa qemu-riscv32) and source its export.sh"


def fork_binary_name(board: BoardProfile) -> str:
    """The program name the fork uses for the board's core."""
    return "qemu-system-xtensa" if board.core.lower().startswith("xtensa") else "qemu-system-riscv32"


@functools.cache
def machines(binary: str) -> frozenset[str]:
    """The machine names `binary -M help` lists (empty when it cannot run); asked once per binary, since
    placement, the plan and the launch each want to know."""
    try:
        result = subprocess.run([binary, "-M", "help"], capture_output=True, text=True, timeout=10, check=False,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip())


def candidates(name: str, path: str | None = None) -> list[str]:
    """Every executable called `name` on PATH, in PATH order."""
    found: list[str] = []
    seen: set[str] = set()  # /bin and /usr/bin are one directory on merged-/usr systems
    for directory in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        candidate = Path(directory or ".") / name
        if candidate.is_file() and os.access(candidate, os.X_OK) and os.path.realpath(candidate) not in seen:
            seen.add(os.path.realpath(candidate))
            found.append(str(candidate))
    return found


def find_fork(board: BoardProfile, path: str | None = None) -> str | None:
    """The first binary on PATH that has the board's machine (the fork), or None."""
    for binary in candidates(fork_binary_name(board), path):
        if board.flash_target in machines(binary):
            return binary
    return None


def why_not(board: BoardProfile, path: str | None = None) -> str:
    """Why the board cannot be emulated here, naming what is on PATH."""
    name = fork_binary_name(board)
    present = candidates(name, path)
    if present:
        return (f"the {name} on PATH ({', '.join(present)}) has no {board.flash_target} machine: it is QEMU "
                f"upstream or Debian's, not Espressif's fork; {INSTALL_HINT}, or connect the board and pass --port")
    return (f"Debian's QEMU has no {board.flash_target} machine and Espressif's fork ({name}) is not on PATH; "
            f"{INSTALL_HINT}, or connect the board and pass --port")


def flash_image(images: Sequence[FlashImage], flash_bytes: int) -> bytes:
    """The whole flash after writing `images` into erased flash; overlapping or oversized images raise."""
    flash = bytearray(b"\xff" * flash_bytes)
    end_of_last = 0
    for image in sorted(images, key=lambda i: i.address):
        if image.address < end_of_last:
            raise PlatformError(f"flash image {image.name} at 0x{image.address:x} overlaps the one before it; "
                                "check the partition table's model partition")
        end = image.address + len(image.data)
        if end > flash_bytes:
            raise PlatformError(f"flash image {image.name} ends at 0x{end:x}, past the board's "
                                f"{flash_bytes // 1024} KB of flash")
        flash[image.address:end] = image.data
        end_of_last = end
    return bytes(flash)


def fork_spec(board: BoardProfile, binary: str, images: Sequence[FlashImage], cache: Path) -> QemuSpec:
    """The launch spec for the board on the fork; the flash image is cached by content."""
    data = flash_image(images, board.flash_bytes)
    cache.mkdir(parents=True, exist_ok=True)
    drive = cache / f"{board.name}-flash-{hashlib.sha256(data).hexdigest()[:16]}.bin"
    if not drive.is_file():
        partial = drive.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(drive)
    xtensa = fork_binary_name(board) == "qemu-system-xtensa"
    return QemuSpec(
        binary=binary,
        debian_package="(none: Espressif's QEMU fork; " + INSTALL_HINT + ")",
        machine=board.flash_target,
        kernel=None,
        flash_drive=drive,
        icount_shift=None if xtensa else DEFAULT_ICOUNT_SHIFT,
    )
