"""Cycle models: per-instruction timings on known sequences, one silicon anchor end to end, determinism."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from profiler.cycles import cortex_m4, riscv_e31
from profiler.cycles.disasm import Insn
from profiler.cycles.stm32_art import ArtFlash, wait_states
from profiler.cycles.trace import TAG_EXEC, TAG_LINE, TAG_REPEAT, Trace

ROOT = Path(__file__).resolve().parent.parent


def m4(*lines: str, start: int = 0x100) -> list[Insn]:
    """Thumb instructions from assembler text; `.w` mnemonics are 4 bytes, the rest 2."""
    out, addr = [], start
    for line in lines:
        mnemonic, _, operands = line.partition(" ")
        size = 4 if mnemonic.endswith(".w") or mnemonic.startswith(("ldrd", "strd", "smla", "vdiv", "vmla")) else 2
        out.append(cortex_m4.decode(addr, size, mnemonic, operands.strip()))
        addr += size
    return out


def cycles(insns: list[Insn]) -> int:
    return sum(cortex_m4.sequence_cycles(insns).values())


@pytest.mark.parametrize(("code", "expected"), [
    (["add r0, r1, r2"], 1),
    (["ldr r0, [r1]"], 2),  # TRM: LDR 2
    (["ldr r0, [r1]", "ldr r2, [r3]"], 3),  # neighbouring loads pipeline: "normally three cycles total"
    (["ldr r0, [r1, #4]", "ldr r1, [r2]", "ldr r2, [r3, #4]"], 4),  # TRM's example: four cycles
    (["ldr r0, [r1]", "ldr r2, [r0]"], 4),  # the second address needs the first load's data: no pipelining
    (["ldr r0, [r1, r2]", "str r0, [r3, #20]"], 3),  # TRM's example: three cycles
    (["adds r1, #4", "ldr r0, [r1]"], 4),  # address from the data-processing result just before: +1
    (["str r0, [r1, #4]"], 1),  # STR with an immediate offset: always one cycle
    (["ldrd r0, r1, [r2]"], 3),
    (["push {r4, r5, r6, r7, lr}"], 6),  # 1 + N
    (["vpush {d8-d9}"], 5),  # four singles
    (["smlad r0, r1, r2, r0"], 1),
    (["vmla.f32 s0, s1, s2"], 3),
    (["vdiv.f32 s0, s1, s2"], 14),
    (["vmls.f32 s0, s1, s2"], 3),  # not "vm" + condition LS: a multiply-accumulate like VMLA
    (["smlal r0, r1, r2, r3", "ldr r4, [r1]"], 4),  # SMLAL writes RdHi, the load's address: +1
    (["adds r0, #1", "it eq", "moveq r1, r2"], 2),  # IT folded after a 16-bit instruction
])
def test_m4_sequences(code: list[str], expected: int) -> None:
    assert cycles(m4(*code)) == expected


def test_m4_branch_refills() -> None:
    branch, aligned, misaligned_wide = m4("b.n 200")[0], m4("add r0, r1", start=0x200)[0], \
        m4("ldr.w r0, [r1]", start=0x202)[0]
    assert cortex_m4.edge_cycles(branch, aligned, taken=True) == {"branch refill": 1}  # 1 + P, P = 1 forwarded
    assert cortex_m4.edge_cycles(branch, misaligned_wide, taken=True)["branch refill"] == 2  # two fetches
    assert cortex_m4.edge_cycles(m4("bne.n 200")[0], aligned, taken=False) == {}  # not taken: 1 cycle
    pop_pc = m4("pop {r4, pc}")[0]
    assert cycles([pop_pc]) == 3 and cortex_m4.edge_cycles(pop_pc, aligned, taken=True)["branch refill"] == 3
    # a load then a load using it across a block boundary loses the pipelining
    first, second = m4("ldr r0, [r1]", "ldr r2, [r3]")
    assert cortex_m4.edge_cycles(first, second, taken=False) == {"load-store pipelining": -1}


def test_e31_latencies() -> None:
    def rv(*lines: str) -> list[Insn]:
        return [riscv_e31.decode(4 * i, 4, line.split()[0], line.partition(" ")[2]) for i, line in enumerate(lines)]

    def total(insns: list[Insn]) -> int:
        return sum(riscv_e31.sequence_cycles(insns).values())

    assert total(rv("lw a0,0(a1)", "addi a2,a3,1")) == 2  # independent: no stall
    assert total(rv("lw a0,0(a1)", "addi a2,a0,1")) == 3  # LW: two-cycle result latency
    assert total(rv("lbu a0,0(a1)", "addi a2,a0,1")) == 4  # LBU: three
    assert total(rv("mul a0,a1,a2", "add a3,a0,a0")) == 6  # MUL: five
    backward = rv("nop", "nop", "bnez a0,0")[2]  # at 8, to 0
    assert riscv_e31.edge_cycles(backward, rv("nop")[0], taken=True) == {}  # predicted taken
    assert riscv_e31.edge_cycles(backward, rv("nop")[0], taken=False) == {"branch mispredict": 3}


def test_rm0090_wait_states() -> None:
    assert wait_states(168_000_000) == 5
    assert wait_states(30_000_000) == 0
    assert wait_states(24_000_000) == 0


def test_art_caches_on_a_stream() -> None:
    """RM0090's ART as modelled: 64 instruction lines with next-line prefetch, 8 data lines, LRU."""
    import numpy as np

    flash = ArtFlash(0x0800_0000, 0x10_0000, wait=5, data_window=(0x0802_0000, 0x1_0000))
    blocks = {0: (0x0800_0000, 0x0800_0004, 0x0800_0010), 1: (0x0800_4000,)}  # block 0 spans two lines
    stream = [(TAG_EXEC, 0), (TAG_REPEAT, 99), (TAG_EXEC, 1), (TAG_EXEC, 0)]
    stream += [(TAG_LINE, line) for line in (*range(9), 0)]  # 9 new data lines, then the first again

    def lines_of(block: int) -> tuple[int, ...]:
        return tuple(sorted({a >> 4 for a in blocks[block]}))

    trace = Trace(blocks, np.array([t for t, _ in stream], dtype=np.uint8),
                  np.array([v for _, v in stream], dtype=np.int64))
    (fetch, data), = flash.stalls(trace, lines_of, 1).tolist()
    # block 0: its first line misses, the second is the prefetched next line; its 99 repeats and its
    # return after block 1 (a miss) hit; data: 9 misses, then line 0 again, evicted by the 8 after it
    assert fetch == 2 * 5
    assert data == 10 * 5


def _shared() -> Path | None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cycle_anchors import default_shared

    return default_shared()


@pytest.mark.skipif(_shared() is None, reason="../shared with cycle-anchors/ is not beside this checkout")
def test_pqm4_anchor_end_to_end(tmp_path: Path) -> None:
    """pqm4's ML-KEM-512 built with its own Makefile, run on the emulated mps2-an386 with its self-check."""
    from cycle_anchors import pqm4

    shared = _shared()
    assert shared is not None
    results = pqm4(shared, tmp_path)
    assert [r.self_check for r in results] == ["OK KEYS"] * 3
    for r in results:
        assert r.published_cycles is not None
        assert r.ipc1_cycles < r.predicted_cycles  # every instruction takes at least one cycle
        assert abs(r.predicted_cycles / r.published_cycles - 1) <= 0.05, r


@pytest.mark.skipif(_shared() is None, reason="../shared with coremark/ is not beside this checkout")
def test_coremark_anchor_end_to_end(tmp_path: Path) -> None:
    """CoreMark's unmodified sources with our port: its own CRC self-check passes on the emulated board, and the
    anchor build is predicted within the issue's ±10 % of Arm's 3.40 CoreMark/MHz, in zero-wait-state memory and
    from the STM32F405's flash (which the ART must hide: within 2 % of zero wait states)."""
    from cycle_anchors import ARM_COREMARK_PER_MHZ, COREMARK_CFLAGS, coremark

    shared = _shared()
    assert shared is not None
    zero_wait, flash = coremark(shared, tmp_path)
    for r in (zero_wait, flash):
        assert r.self_check == "CRCs of the 2K performance run match"
        assert r.build.endswith(" ".join(COREMARK_CFLAGS))
        assert r.ipc1_cycles < r.predicted_cycles
    assert zero_wait.predicted_coremark_per_mhz is not None and flash.predicted_coremark_per_mhz is not None
    assert abs(zero_wait.predicted_coremark_per_mhz / ARM_COREMARK_PER_MHZ - 1) <= 0.10, zero_wait
    assert 0 <= 1 - flash.predicted_coremark_per_mhz / zero_wait.predicted_coremark_per_mhz <= 0.02


def test_prediction_deterministic_on_emulated_stm32(tmp_path: Path) -> None:
    """Two predicted runs of the demo give the same figures, positive and below the 1-IPC bound."""
    from profiler.api import RunOptions, plan_run

    figures = []
    for i in range(2):
        session, _ = plan_run(RunOptions(device="stm32", model="demo", tokens=6, repeat=5, warmup=0,
                                         out=tmp_path / str(i), emulate=True, predict=True))
        summary = session.run()
        assert summary.valid and summary.cycle_model is not None
        assert summary.cycle_model.startswith("cortex-m4-trm/2 + stm32f4-art/1")
        parts = summary.predicted_cycles_per_token_by_part or {}
        assert parts.get("flash data wait", 0) > 0  # the weights' loads from flash reached the ART model
        figures.append((summary.predicted_cycles_per_token, summary.predicted_decode_tokens_per_s,
                        summary.ipc1_decode_tokens_per_s, summary.predicted_cycles_per_token_by_part))
    assert figures[0] == figures[1]
    predicted, bound = figures[0][1], figures[0][2]
    assert predicted is not None and bound is not None and 0 < predicted <= bound
