"""Flash images from ELF files: the bytes a flasher writes, and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from profiler.errors import PlatformError


@dataclass(frozen=True)
class FlashImage:
    """Contiguous bytes to write at `address` (gaps between segments are erased flash, 0xFF)."""

    name: str
    address: int
    data: bytes


def elf_flash_image(elf: Path, flash_base: int, flash_bytes: int, name: str = "firmware") -> FlashImage:
    """The flash contents of an ELF: every loadable segment with file bytes, at its load (physical) address.

    `.data` initialisers count (their load address is in flash); `.bss` has no file bytes and
    RAM-only segments fall outside [flash_base, flash_base + flash_bytes), so neither is written.
    """
    pieces: list[tuple[int, bytes]] = []
    with elf.open("rb") as handle:
        image = ELFFile(handle)
        for segment in image.iter_segments():
            if segment["p_type"] != "PT_LOAD" or segment["p_filesz"] == 0:
                continue
            address = int(segment["p_paddr"])
            if flash_base <= address < flash_base + flash_bytes:
                pieces.append((address, segment.data()[: segment["p_filesz"]]))
    if not pieces:
        raise PlatformError(f"{elf} has no loadable segment in flash at 0x{flash_base:08x}; rebuild the firmware")
    pieces.sort()
    start = pieces[0][0]
    end = max(address + len(data) for address, data in pieces)
    buffer = bytearray(b"\xff" * (end - start))
    for address, data in pieces:
        buffer[address - start : address - start + len(data)] = data
    return FlashImage(name, start, bytes(buffer))
