"""RV32IMAC cycle model `sifive-e31/1`: a simple in-order core standing for SiFive's E31.

The emulated RISC-V board (QEMU `virt`, rv32imac) has no chip behind it; the model stands for the
SiFive E31 core complex (rv32imac, as in the FE310), whose manual publishes: a single-issue, in-order,
five-stage pipeline, one instruction per cycle at best, fully bypassed; LW has a two-cycle result
latency, LH/LHU/LB/LBU three, CSR reads three, MUL/MULH/MULHU/MULHSU five, DIV/DIVU/REM/REMU 2 to 33
cycles depending on the operands (one bit per cycle); the multiplier and divider take one operation at
a time; correctly predicted control flow costs nothing, a misprediction three cycles. The pipeline
interlocks on read-after-write hazards only.

Modelled: those latencies, as stalls of the instruction that reads the result too early (within a
block, and between a block's last instruction and the next block's first); branch prediction as
"backward taken, forward not taken" (the E31's history table learns loops the same way; it is not
simulated), jumps and returns predicted (BTB, return stack), other indirect jumps mispredicted.
Left out: the instruction cache and memory wait states (ITIM/DTIM-like zero-wait memory assumed),
divide times by operand (DIVIDE_LATENCY, the middle of 2..33), and a stall carried across more than
one block boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

from profiler.cycles.disasm import Insn, rv_regs, split_operands

NAME = "sifive-e31"
VERSION = 1
MISPREDICT_CYCLES = 3
DIVIDE_LATENCY = 17
CATEGORIES = ("issue", "load-use", "multiply/divide", "branch mispredict")
_BRANCHES = {"beq", "bne", "blt", "bge", "bltu", "bgeu", "beqz", "bnez", "blez", "bgez", "bltz", "bgtz", "bgt",
             "ble", "bgtu", "bleu"}


def base_mnemonic(mnemonic: str) -> str:
    return mnemonic.removeprefix("c.")


def latency(insn: Insn) -> int:
    """Cycles until the result of `insn` can be used by a following instruction."""
    m = base_mnemonic(insn.mnemonic)
    if m in ("lw", "flw"):
        return 2
    if m in ("lh", "lhu", "lb", "lbu") or m.startswith("csrr"):
        return 3
    if m.startswith("mul"):
        return 5
    if m.startswith(("div", "rem")):
        return DIVIDE_LATENCY
    return 1


def decode(addr: int, size: int, mnemonic: str, operands: str) -> Insn:
    """Register roles of one RISC-V instruction from its assembler text."""
    m = base_mnemonic(mnemonic)
    parts = split_operands(operands)
    regs = [rv_regs(p) for p in parts]
    dests: list[str] = []
    sources: list[str] = []
    address: list[str] = []
    if m in ("sb", "sh", "sw", "fsw") or m in _BRANCHES or m in ("j", "jr", "ret", "fence", "ecall", "ebreak", "wfi",
                                                                   "nop", "mret"):
        sources = [r for rs in regs for r in rs]
        if m in ("sb", "sh", "sw", "fsw") and len(regs) > 1:
            address = regs[1]
    elif m == "jal" and len(parts) == 1:
        dests = ["ra"]
    elif m == "jalr" and len(parts) == 1:
        dests, sources = ["ra"], regs[0]
    elif regs:
        dests, sources = regs[0], [r for rs in regs[1:] for r in rs]
        if m in ("lb", "lh", "lw", "lbu", "lhu", "flw"):
            address = sources
    return Insn(addr, size, mnemonic, operands, frozenset(dests), frozenset(sources), frozenset(address))


def sequence_cycles(insns: Sequence[Insn], prev: Insn | None = None) -> dict[str, int]:
    """Cycles of a straight-line run, by category, with read-after-write stalls."""
    out = {"issue": 0}
    t = 0
    ready: dict[str, tuple[int, bool]] = {}  # register -> (cycle its value is ready, from MUL/DIV)
    unit_free = 0
    if prev is not None:
        for d in prev.dests:
            ready[d] = (latency(prev) - 1, _muldiv(prev))
    for insn in insns:
        waits = [ready[r] for r in insn.sources if r in ready]
        start = max([t, *(w[0] for w in waits)])
        muldiv = _muldiv(insn)
        if muldiv:
            start = max(start, unit_free)
        if start > t:
            by_muldiv = (muldiv and unit_free > t) or any(w[1] and w[0] > t for w in waits)
            cat = "multiply/divide" if by_muldiv else "load-use"
            out[cat] = out.get(cat, 0) + start - t
        out["issue"] += 1
        t = start + 1
        for d in insn.dests:
            ready[d] = (start + latency(insn), muldiv)
        if muldiv:
            unit_free = start + latency(insn)
    return out


def _muldiv(insn: Insn) -> bool:
    return base_mnemonic(insn.mnemonic).startswith(("mul", "div", "rem"))


def edge_cycles(last: Insn, first: Insn, taken: bool) -> dict[str, int]:
    """A misprediction at the end of `last`'s block, and a result of `last` that `first` waits for."""
    out: dict[str, int] = {}
    m = base_mnemonic(last.mnemonic)
    mispredicted = False
    if m in _BRANCHES:
        mispredicted = taken != (_branch_target(last) < last.addr)
    elif m in ("jr", "jalr") and last.operands.strip() not in ("ra", "0(ra)"):
        mispredicted = taken
    if mispredicted:
        out["branch mispredict"] = MISPREDICT_CYCLES
    for cat, n in sequence_cycles([first], last).items():
        if cat != "issue":
            out[cat] = n
    return out


def _branch_target(insn: Insn) -> int:
    """The target address objdump prints as a branch's last operand (hex)."""
    try:
        return int(split_operands(insn.operands)[-1].split()[0], 16)
    except (ValueError, IndexError):
        return insn.addr + insn.size
