"""Cortex-M4 cycle model `cortex-m4-trm/2`: Arm's published instruction timings, zero-wait-state memory.

Sources: Arm Cortex-M4 Technical Reference Manual (DDI 0439), "Instruction set summary" (cycles per
instruction), "Load/store timings" (pipelining of neighbouring loads and stores, address dependency
stall) and the FPU chapter's instruction table. The rules, per executed instruction:

- data processing, multiplies (MUL, MLA, SMLAD, SMULL, UMLAL...), saturation, bit field: 1 cycle;
  SDIV/UDIV: 2 to 12 cycles depending on the operands, which the trace does not carry: DIVIDE_CYCLES;
- LDR/LDRB/LDRH/LDRSB/LDRSH/LDREX: 2 cycles, 1 when it follows a single load (pipelined) whose result
  it does not use in its address; STR with an immediate offset: 1; STR with a register offset: 2, 1
  after a load;
- LDRD/STRD: 3, never pipelined; LDM/STM/PUSH/POP: 1 + N; VLDR/VSTR 2 (64-bit: 3); VLDM/VSTM/VPUSH/
  VPOP: 1 + N;
- a load or store whose address uses the result of the data-processing instruction just before it:
  one more cycle (no forwarding path to the address generator);
- a taken branch: 1 + P, where the TRM gives P as 1 to 3 "depending on the alignment and width of the
  target instruction, and whether the processor manages to speculate the address early". Branch
  forwarding (immediate branches, BX LR): P = 1; other register branches: 2; a load into the PC and
  TBB/TBH ("three cycles for the pipeline reload"): 3; one more when the target is a 32-bit
  instruction that is not word aligned. A conditional branch not taken: 1. TBB/TBH: 2 + 1 + P;
- IT: folded (0 cycles) after a 16-bit instruction, else 1;
- FPU: VADD/VSUB/VMUL/VNMUL/VABS/VNEG/VCVT/VCMP/VMOV/VMRS/VMSR 1, VMLA/VMLS/VNMLA/VNMLS/VFMA/VFMS/
  VFNMA/VFNMS 3, VDIV/VSQRT 14.

Left out: the write buffer filling up, bus contention between the I and D buses, interrupts and
exception entry (12 cycles), condition-failed instructions in IT blocks (counted as executed),
unaligned 32-bit instruction groups, and data-dependent divide times.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from profiler.cycles.disasm import Insn, arm_reglist_count, arm_regs, split_operands

NAME = "cortex-m4-trm"
VERSION = 2
REFILL_CYCLES = 1  # P of a forwarded branch (B, BL, B<cond>, CBZ/CBNZ to an immediate, BX LR)
REGISTER_REFILL_CYCLES = 2  # P of BX/BLX to another register and of MOV/ADD to the PC
LOAD_REFILL_CYCLES = 3  # P after a load into the PC (POP, LDM, LDR) and TBB/TBH
DIVIDE_CYCLES = 7  # middle of the TRM's 2..12

CATEGORIES = ("issue", "load", "load-store pipelining", "address dependency", "branch refill", "multi-register",
              "fpu multi-cycle", "divide")
_CONDS = {"eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"}
_NO_DEST = {"cmp", "cmn", "tst", "teq", "vcmp", "vcmpe", "nop", "dmb", "dsb", "isb", "cpsid", "cpsie", "msr", "bkpt",
            "wfi", "wfe", "sev", "svc"}
# mnemonics whose last two letters spell a condition code but are not one ("movs" is not "mo" + VS)
_ENDS_LIKE_A_CONDITION = {"bl", "blx", "bx", "b", "cbz", "cbnz", "teq", "bics", "mls", "lsls", "muls", "movs", "adcs",
                          "sbcs", "smlal", "umlal", "smlals", "umlals", "vmls", "vnmls", "vcmp"}
_LONG_MUL = re.compile(r"^(u|s)(mull|mlal|mlal[bt][bt]|mlald|mlaldx|mlsld|mlsldx)$|^umaal$")
_FMAC = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}


def base_mnemonic(mnemonic: str) -> str:
    """The operation without width qualifier, data type or condition: "ldrbeq.w" -> "ldrb", "bne.n" -> "b"."""
    m = mnemonic.split(".")[0]
    if m in _ENDS_LIKE_A_CONDITION:
        return m
    if len(m) > 2 and m[-2:] in _CONDS:
        stripped = m[:-2]
        if stripped in ("b", "bl", "bx", "blx") or not stripped.startswith("b"):
            return stripped
    return m


def kind(mnemonic: str) -> str:
    """The timing class of an instruction."""
    m = base_mnemonic(mnemonic)
    if re.fullmatch(r"it[te]{0,3}", m):
        return "it"
    if m in ("b", "bl", "blx", "bx", "cbz", "cbnz"):
        return "branch"
    if m in ("tbb", "tbh"):
        return "table-branch"
    if m.startswith(("vpush", "vstm")):
        return "fstm"
    if m.startswith(("vpop", "vldm")):
        return "fldm"
    if m == "vldr":
        return "fload"
    if m == "vstr":
        return "fstore"
    if m in ("vdiv", "vsqrt"):
        return "fdiv"
    if m in _FMAC:
        return "fmac"
    if m.startswith("v"):
        return "fp"
    if m.startswith(("ldrd", "strd")):
        return "dual"
    if m.startswith(("ldm", "pop")):
        return "ldm"
    if m.startswith(("stm", "push")):
        return "stm"
    if m.startswith("ldr"):
        return "load"
    if m.startswith("str"):
        return "store"
    if m in ("sdiv", "udiv"):
        return "div"
    return "alu"


def decode(addr: int, size: int, mnemonic: str, operands: str) -> Insn:
    """Register roles of one Thumb-2 instruction from its assembler text."""
    k, m = kind(mnemonic), base_mnemonic(mnemonic)
    parts = split_operands(operands)
    dests: list[str] = []
    sources: list[str] = []
    address: list[str] = []
    moved = 0
    if k in ("load", "store", "dual", "fload", "fstore"):
        mem = next((i for i, p in enumerate(parts) if p.startswith("[")), len(parts))
        data = [r for p in parts[:mem] for r in arm_regs(p)]
        address = [r for p in parts[mem:mem + 1] for r in arm_regs(p)]
        rest = [r for p in parts[mem + 1:] for r in arm_regs(p)]  # post-indexed by a register
        writeback = "!" in operands or mem + 1 < len(parts)
        (dests if k in ("load", "dual", "fload") and m.startswith(("ldr", "vldr")) else sources).extend(data)
        sources += address + rest
        address += rest
        if writeback and address:
            dests.append(address[0])
        moved = 2 if k == "dual" else 1
    elif k in ("ldm", "stm", "fldm", "fstm"):
        moved = arm_reglist_count(operands)
        base = ["r13"] if m.endswith(("push", "pop")) else arm_regs(parts[0])[:1]
        listed = arm_regs(operands[operands.index("{"):]) if "{" in operands else []
        address = base
        sources += base
        if k in ("ldm", "fldm"):
            dests += listed
        else:
            sources += listed
        if "!" in operands or m.endswith(("push", "pop")):
            dests += base
    elif k in ("branch", "table-branch", "it"):
        sources = arm_regs(operands)
        if m in ("bl", "blx"):
            dests = ["r14"]
    else:
        regs = [arm_regs(p) for p in parts]
        n_dest = 0 if m in _NO_DEST or m.startswith("vcmp") else 2 if _LONG_MUL.match(m) else 1
        dests = [r for rs in regs[:n_dest] for r in rs]
        sources = [r for rs in regs[n_dest:] for r in rs]
        if _LONG_MUL.match(m) and ("mla" in m or "mls" in m or m == "umaal"):
            sources += dests  # accumulating long multiplies read their destination pair
        if m == "vmrs" and "apsr" in operands:
            dests = []  # the FPU flags to the core's: no register written
    return Insn(addr, size, mnemonic, operands, frozenset(dests), frozenset(sources), frozenset(address), moved)


def writes_pc(insn: Insn) -> bool:
    """A load or move into the PC: a branch whether or not the mnemonic says so."""
    return "r15" in insn.dests


def issue_cycles(insn: Insn, prev: Insn | None) -> dict[str, int]:
    """Cycles of `insn` after `prev` (None: unknown predecessor), by category, without branch refills."""
    k = kind(insn.mnemonic)
    out: dict[str, int] = {"issue": 1}
    if k == "it":
        folded = prev is not None and prev.size == 2
        return {"issue": 0 if folded else 1}
    pk = kind(prev.mnemonic) if prev is not None else ""
    if k in ("load", "store", "dual", "fload", "fstore", "ldm", "stm", "fldm", "fstm") and prev is not None:
        if pk not in ("load", "store", "dual", "ldm", "stm", "fload", "fstore", "fldm", "fstm", "branch") \
                and prev.dests & insn.address_regs:
            out["address dependency"] = 1
    if k == "load":
        pipelined = pk == "load" and prev is not None and not writes_pc(prev) \
            and not (prev.dests & insn.address_regs)
        out["load"] = 1
        if pipelined:
            out["load-store pipelining"] = -1
    elif k == "store":
        register_offset = len(insn.address_regs) > 1 and "!" not in insn.operands
        if register_offset:
            out["load"] = 1
            if pk == "load":
                out["load-store pipelining"] = -1
    elif k == "dual":
        out["load"] = 2
    elif k in ("ldm", "stm", "fldm", "fstm"):
        out["multi-register"] = insn.registers_moved
    elif k in ("fload", "fstore"):
        out["load"] = 2 if "d" in insn.operands.split(",")[0] else 1
    elif k == "fmac":
        out["fpu multi-cycle"] = 2
    elif k == "fdiv":
        out["fpu multi-cycle"] = 13
    elif k == "div":
        out["divide"] = DIVIDE_CYCLES - 1
    elif k == "table-branch":
        out["load"] = 2
    elif k == "fp" and base_mnemonic(insn.mnemonic) == "vmov" and len(arm_regs(insn.operands)) == 4:
        out["issue"] = 2  # two core registers to or from two singles (or a double)
    return out


def refill_cycles(branch: Insn, target: Insn | None) -> int:
    """P for `branch` taken to `target`: the TRM's branch forwarding makes immediate branches and BX LR
    cheapest; a load into the PC or TBB/TBH waits for the data (three cycles of reload); one more when
    the target is a 32-bit instruction on a halfword boundary (two fetches)."""
    k, m = kind(branch.mnemonic), base_mnemonic(branch.mnemonic)
    if k in ("load", "ldm", "table-branch"):
        p = LOAD_REFILL_CYCLES
    elif k == "branch" and (m in ("b", "bl", "cbz", "cbnz") or branch.sources == {"r14"}):
        p = REFILL_CYCLES
    else:
        p = REGISTER_REFILL_CYCLES  # BX/BLX to a register, MOV/ADD to the PC, an exception
    extra = 1 if target is not None and target.size == 4 and target.addr % 4 == 2 else 0
    return p + extra


def sequence_cycles(insns: Sequence[Insn], prev: Insn | None = None) -> dict[str, int]:
    """Cycles of a straight-line run of instructions (no taken branch inside), by category."""
    total: dict[str, int] = {}
    for insn in insns:
        for cat, n in issue_cycles(insn, prev).items():
            total[cat] = total.get(cat, 0) + n
        prev = insn
    return total


def edge_cycles(last: Insn, first: Insn, taken: bool) -> dict[str, int]:
    """What going from block end `last` to block start `first` adds: the refill and the pair rules."""
    out: dict[str, int] = {}
    if taken:
        out["branch refill"] = refill_cycles(last, first)
    alone, paired = issue_cycles(first, None), issue_cycles(first, last)
    for cat in set(alone) | set(paired):
        diff = paired.get(cat, 0) - alone.get(cat, 0)
        if diff:
            out[cat] = diff
    return out
