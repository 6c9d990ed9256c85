"""Build the profiler firmware on first use, cached by the hash of its sources.

Users never run make by hand: `run` asks for the image of a port, and this
module builds it when the cache has no image for the current sources. The
firmware id the board announces in HELLO is the same hash, so every JSONL
header names exactly which firmware produced it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from profiler.emulator import require_binary
from profiler.errors import ConfigError, PlatformError

FIRMWARE_DIR = Path(
    os.environ.get("TINY_PROFILER_FIRMWARE_DIR", Path(__file__).resolve().parent.parent / "firmware")
)
_SOURCE_SUFFIXES = {".c", ".h", ".ld", ".S", ".s", ".mk"}


@dataclass(frozen=True)
class Toolchain:
    """A cross compiler and the Debian package that provides it."""

    compiler: str
    debian_package: str


@dataclass(frozen=True)
class FirmwareImage:
    """A built firmware ELF and what the host needs to know of it before launch."""

    port: str
    firmware_id: str
    elf: Path
    static_ram_bytes: int
    arena_total_bytes: int
    flash_used_bytes: int
    sections: dict[str, int]


def cache_dir() -> Path:
    """Where built images live: $TINY_PROFILER_CACHE or the XDG cache."""
    override = os.environ.get("TINY_PROFILER_CACHE")
    if override:
        return Path(override) / "firmware"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tiny-profiler" / "firmware"


def source_hash(port: str, firmware_dir: Path = FIRMWARE_DIR) -> str:
    """sha256 over the Makefile, the portable core, the bare-metal ports' shared files and the port's sources."""
    roots = [firmware_dir / "core", firmware_dir / "ports" / port, firmware_dir / "ports" / "common"]
    if not roots[1].is_dir():
        raise PlatformError(f"firmware port {port!r} not found under {firmware_dir}/ports")
    digest = hashlib.sha256()
    files = [firmware_dir / "Makefile"]
    for root in roots:
        files += sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _SOURCE_SUFFIXES)
    for path in files:
        digest.update(str(path.relative_to(firmware_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def kernel_variants(port: str, firmware_dir: Path = FIRMWARE_DIR) -> tuple[str, ...]:
    """The matmul kernel sets the port builds, its default first (port.mk: KERNELS, KERNEL_VARIANTS)."""
    port_mk = firmware_dir / "ports" / port / "port.mk"
    text = port_mk.read_text() if port_mk.is_file() else ""
    listed = re.search(r"^KERNEL_VARIANTS\s*:?=\s*(.+)$", text, re.MULTILINE)
    default = re.search(r"^KERNELS\s*\??=\s*(\S+)", text, re.MULTILINE)
    variants = tuple(listed.group(1).split()) if listed else ("portable",)
    first = default.group(1) if default else "portable"
    return (first, *[v for v in variants if v != first])


def port_toolchain(port: str, firmware_dir: Path = FIRMWARE_DIR) -> Toolchain:
    """The cross compiler the port builds with (port.mk: CROSS), and the Debian package `gcc-<target>` with it."""
    port_mk = firmware_dir / "ports" / port / "port.mk"
    text = port_mk.read_text() if port_mk.is_file() else ""
    cross = re.search(r"^CROSS\s*:?=\s*(\S+)-\s*$", text, re.MULTILINE)
    if cross is None:
        raise PlatformError(f"firmware port {port!r} names no cross compiler (CROSS := <target>- in "
                            f"{port_mk}); add that line to its port.mk")
    return Toolchain(f"{cross.group(1)}-gcc", f"gcc-{cross.group(1)}")


def resolve_kernels(port: str, kernels: str | None) -> str:
    """The kernel set to build: the port's default for None; ConfigError naming the valid ones otherwise."""
    variants = kernel_variants(port)
    if kernels is None:
        return variants[0]
    if kernels not in variants:
        raise ConfigError(f"kernels {kernels!r} are not built for firmware port {port}; "
                          f"choose one of: {', '.join(variants)}")
    return kernels


def ensure_firmware(port: str, toolchain: Toolchain | None = None, kernels: str | None = None) -> FirmwareImage:
    """Return the image for the current sources and kernel set, building it if missing or stale
    (with the port's own toolchain unless one is given).

    The firmware id (and so the cache entry) ends in +<kernels>: each set is its own image.
    """
    kernels = resolve_kernels(port, kernels)
    firmware_id = f"{port}-{source_hash(port)[:12]}+{kernels}"
    target = cache_dir() / firmware_id
    elf = target / "firmware.elf"
    if not elf.is_file():
        _build(port, toolchain or port_toolchain(port), firmware_id, target, kernels)
    return _inspected(port, firmware_id, elf)


def _inspected(port: str, firmware_id: str, elf: Path) -> FirmwareImage:
    """inspect_elf, remembered beside the ELF: parsing its symbols is most of a run's planning time."""
    stamp = elf.stat()
    memo = elf.with_name("image.json")
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(memo.read_text())
        if saved["elf_size"] == stamp.st_size and saved["elf_mtime_ns"] == stamp.st_mtime_ns:
            return FirmwareImage(port=port, firmware_id=firmware_id, elf=elf, **saved["image"])
    image = inspect_elf(port, firmware_id, elf)
    with contextlib.suppress(OSError):  # a read-only cache only costs the next run the parse
        memo.write_text(json.dumps({"elf_size": stamp.st_size, "elf_mtime_ns": stamp.st_mtime_ns, "image": {
            "static_ram_bytes": image.static_ram_bytes, "arena_total_bytes": image.arena_total_bytes,
            "flash_used_bytes": image.flash_used_bytes, "sections": image.sections}}))
    return image


def _build(port: str, toolchain: Toolchain, firmware_id: str, target: Path, kernels: str) -> None:
    require_binary(toolchain.compiler, toolchain.debian_package)
    require_binary("make", "make")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{firmware_id}-", dir=target.parent))
    try:
        result = subprocess.run(
            ["make", "-C", str(FIRMWARE_DIR), f"PORT={port}", f"BUILD_DIR={staging}", f"FIRMWARE_ID={firmware_id}",
             f"KERNELS={kernels}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PlatformError(
                f"building the {port} firmware failed: {tail[0]}; run `make firmware` to see the full log"
            )
        try:
            staging.rename(target)  # atomic: a concurrent build of the same sources may win
        except OSError:
            if not (target / "firmware.elf").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class SectionSizes:
    """Allocated sections of an ELF, classified like binutils' `size` (Berkeley format)."""

    sections: dict[str, int]
    text: int  # code and read-only data: flash
    data: int  # initialised writable data: flash (its image) and RAM
    bss: int  # zeroed writable data: RAM

    @property
    def flash_bytes(self) -> int:
        """Flash the image occupies: code, constants and the initial values of .data."""
        return self.text + self.data

    @property
    def static_ram_bytes(self) -> int:
        """RAM taken before the first instruction runs."""
        return self.data + self.bss


def section_sizes(elf: Path) -> SectionSizes:
    """Per-section sizes from the ELF's section headers (pyelftools)."""
    sections: dict[str, int] = {}
    text = data = bss = 0
    with elf.open("rb") as handle:
        for section in ELFFile(handle).iter_sections():
            flags, size = section["sh_flags"], section["sh_size"]
            if not flags & SH_FLAGS.SHF_ALLOC or size == 0:
                continue
            sections[section.name] = size
            if section["sh_type"] == "SHT_NOBITS":
                bss += size
            elif flags & SH_FLAGS.SHF_WRITE:
                data += size
            else:
                text += size
    return SectionSizes(sections, text, data, bss)


def inspect_elf(port: str, firmware_id: str, elf: Path) -> FirmwareImage:
    """Read static RAM, arena and code size from the ELF (pyelftools)."""
    symbols: dict[str, int] = {}
    with elf.open("rb") as handle:
        table = ELFFile(handle).get_section_by_name(".symtab")
        if table is not None:
            for name in ("__arena_start", "__arena_end"):
                found = table.get_symbol_by_name(name)  # type: ignore[attr-defined]
                if found:
                    symbols[name] = int(found[0]["st_value"])
    if len(symbols) != 2:
        raise PlatformError(f"{elf} lacks the __arena_start/__arena_end symbols; rebuild the firmware")
    sizes = section_sizes(elf)
    return FirmwareImage(
        port=port,
        firmware_id=firmware_id,
        elf=elf,
        static_ram_bytes=sizes.static_ram_bytes,
        arena_total_bytes=symbols["__arena_end"] - symbols["__arena_start"],
        flash_used_bytes=sizes.flash_bytes,
        sections=sizes.sections,
    )
