"""Flash images from ELF files: the bytes a flasher writes, and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from profiler.errors import PlatformError


@dataclass(frozen=True)
class FlashImage:
    """Contiguous bytes to write at `address` (gaps between segments are erased flash, 0xFF).

    `source` is the file the bytes came from, for tools that take a file rather than bytes:
    an ELF (`elf` true: the tool reads the addresses inside) or the raw binary itself.
    """

    name: str
    address: int
    data: bytes
    source: Path | None = None
    elf: bool = False


@dataclass(frozen=True)
class FlashRegion:
    """One image written (or found already in place) at one address."""

    name: str
    address: int
    size: int
    written: bool


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
    return FlashImage(name, start, bytes(buffer), source=elf, elf=True)


def raw_image(name: str, address: int, path: Path) -> FlashImage:
    """A binary file (the model) to write as it is at `address`."""
    return FlashImage(name, address, path.read_bytes(), source=path)


def image_file(image: FlashImage, directory: Path) -> Path:
    """A file holding the image for tools that take files: its source, else its bytes written to `directory`."""
    if image.source is not None:
        return image.source
    path = directory / f"{image.name}.bin"
    path.write_bytes(image.data)
    return path
