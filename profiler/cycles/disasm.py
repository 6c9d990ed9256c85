"""Instructions of an ELF as the cycle models need them, from binutils' objdump.

Each executed address the trace names is looked up here: its size, mnemonic and the registers it
reads, writes and uses to form an address. The register roles are read from the assembler text,
which is all the models need (dependencies between neighbouring instructions), not a full decoder.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from profiler.emulator import require_binary
from profiler.errors import ToolMissing

_LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(\S+)\s*(.*)$")
_ARM_REG = re.compile(r"\b(r1[0-5]|r[0-9]|sp|lr|pc|ip|fp|sl|sb|s[12]?[0-9]|s3[01]|d1[0-5]|d[0-9])\b")
_ARM_ALIAS = {"ip": "r12", "fp": "r11", "sl": "r10", "sb": "r9", "sp": "r13", "lr": "r14", "pc": "r15"}
_RV_REG = re.compile(r"\b(zero|ra|sp|gp|tp|t[0-6]|s1[01]|s[0-9]|a[0-7]|fs?[0-9]+|x[0-9]+)\b")


@dataclass(frozen=True)
class Insn:
    """One instruction: where it is, what it is, and its register roles."""

    addr: int
    size: int
    mnemonic: str  # as printed, lower case: "ldr.w", "beq.n", "vmla.f32", "lw"
    operands: str
    dests: frozenset[str] = field(default_factory=frozenset)
    sources: frozenset[str] = field(default_factory=frozenset)
    address_regs: frozenset[str] = field(default_factory=frozenset)  # base and index of a memory access
    registers_moved: int = 0  # LDM/STM/PUSH/POP/VLDM...: how many 32-bit registers


def objdump_lines(elf: Path, objdump: str, debian_package: str, machine: str | None = None
                  ) -> list[tuple[int, int, str, str]]:
    """(address, size, mnemonic, operands) of every instruction objdump disassembles in the ELF.

    `machine` (objdump -m) names an architecture the ELF's attributes do not select, e.g. armv8.1-m.main
    for Helium: without it objdump prints MVE instructions as undefined halfwords."""
    tool = require_binary(objdump, debian_package)
    try:
        text = subprocess.run([tool, "-d", "-w", *(("-m", machine) if machine else ()), str(elf)], capture_output=True,
                              text=True, check=True).stdout
    except subprocess.CalledProcessError as exc:
        raise ToolMissing(f"{objdump} could not read {elf}: {exc.stderr.strip()}") from exc
    found = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None or m.group(3).startswith("."):
            continue  # literal pools (.word) and other data in code
        raw = m.group(2).replace(" ", "")
        operands = re.split(r"\s[@;#]\s|\s<", m.group(4), maxsplit=1)[0].strip()
        found.append((int(m.group(1), 16), len(raw) // 2, m.group(3).lower(), operands))
    return found


def split_operands(operands: str) -> list[str]:
    """Top-level comma-separated operands (commas inside [] and {} stay)."""
    parts, depth, current = [], 0, ""
    for ch in operands:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def arm_regs(text: str) -> list[str]:
    """Core and FPU registers named in `text`, aliases resolved (ip -> r12, sp -> r13, d0 -> s0 s1)."""
    regs: list[str] = []
    for r in _ARM_REG.findall(text):
        r = _ARM_ALIAS.get(r, r)
        if r.startswith("d"):
            n = int(r[1:])
            regs += [f"s{2 * n}", f"s{2 * n + 1}"]
        else:
            regs.append(r)
    return regs


def arm_reglist_count(text: str) -> int:
    """Registers in a {list}, ranges included: {r4-r7, lr} is 5, {d8-d9} is 4 singles."""
    inner = text[text.index("{") + 1:text.index("}")] if "{" in text else text
    count = 0
    for item in (i.strip() for i in inner.split(",") if i.strip()):
        if "-" in item:
            lo, hi = (_ARM_ALIAS.get(x.strip(), x.strip()) for x in item.split("-"))
            span = int(hi[1:]) - int(lo[1:]) + 1
            count += span * (2 if lo.startswith("d") else 1)
        else:
            count += len(arm_regs(item))
    return count


def rv_regs(text: str) -> list[str]:
    """Integer and FP registers named in a RISC-V operand text."""
    return [r for r in _RV_REG.findall(text) if r != "zero"]
