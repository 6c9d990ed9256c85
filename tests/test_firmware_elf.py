"""Static memory from the firmware ELF, cross-checked against binutils' own `size`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from profiler.firmware import ensure_firmware, port_toolchain, section_sizes


@pytest.mark.parametrize(("port", "size_tool"), [
    ("stm32f4", "arm-none-eabi-size"),
    ("riscv-virt", "riscv64-unknown-elf-size"),
])
def test_section_sizes_match_binutils_size(port: str, size_tool: str) -> None:
    assert port_toolchain(port).compiler == size_tool.replace("-size", "-gcc")  # the port.mk's CROSS
    image = ensure_firmware(port)
    tool = shutil.which(size_tool)
    assert tool, f"{size_tool} comes with the cross toolchain that `make test` installs"
    out = subprocess.run([tool, "-B", str(image.elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    sizes = section_sizes(Path(image.elf))
    assert (sizes.text, sizes.data, sizes.bss) == (text, data, bss)
    assert image.static_ram_bytes == data + bss and image.flash_used_bytes == text + data
    assert ".text" in sizes.sections and sum(sizes.sections.values()) == text + data + bss
