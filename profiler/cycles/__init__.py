"""Cycle models: what a real chip would take for what the emulated board executed.

An emulated board's timer counts instructions (QEMU `-icount`), not cycles. With a prediction the
session loads our QEMU plugin (trace.py), which records the blocks the CPU executed during the first
repetition; the core's model (cortex_m4.py, riscv_e31.py) and the board's memory model (stm32_art.py)
turn that into cycles (engine.py). Every figure is labelled with the models' names and versions.
Documentation: docs/performance.md, "Cycle models".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from elftools.elf.elffile import ELFFile

from platforms.boards import BoardProfile
from profiler.cycles import cortex_m4, engine, riscv_e31
from profiler.cycles.disasm import objdump_lines
from profiler.cycles.stm32_art import ArtFlash, wait_states
from profiler.cycles.trace import Trace, plugin_args

# core name (as board profiles spell it) -> (model module, objdump, its Debian package)
CORES: dict[str, tuple[ModuleType, str, str]] = {
    "cortex-m4f": (cortex_m4, "arm-none-eabi-objdump", "binutils-arm-none-eabi"),
    "cortex-m4": (cortex_m4, "arm-none-eabi-objdump", "binutils-arm-none-eabi"),
    "rv32imac": (riscv_e31, "riscv64-unknown-elf-objdump", "binutils-riscv64-unknown-elf"),
    "rv32imc": (riscv_e31, "riscv64-unknown-elf-objdump", "binutils-riscv64-unknown-elf"),
}
MARK_SYMBOL = "tp_forward"  # one segment per forward pass of the profiler's firmware


@dataclass(frozen=True)
class DecodePrediction:
    """Predicted cycles of the decode steps of one traced repetition."""

    model: str  # e.g. "cortex-m4-trm/2 + stm32f4-art/1 (5 wait states)"
    steps: int  # decode steps traced
    instructions_per_step: float
    cycles_per_step: float
    cycles_per_step_by_part: dict[str, float]

    @property
    def cycles_per_instruction(self) -> float:
        return self.cycles_per_step / self.instructions_per_step


def supported(board: BoardProfile) -> bool:
    """A model exists for the board's core."""
    return board.core in CORES


def memory_model(board: BoardProfile) -> ArtFlash | None:
    """The board's flash model, from its profile (`flash_accelerator`), or None for zero wait states."""
    if board.flash_accelerator == "stm32f4-art":
        return ArtFlash(board.flash_base, board.flash_bytes, wait_states(board.clock_hz),
                        data_window=(board.model_addr, board.model_region_bytes))
    return None


def model_name(board: BoardProfile) -> str:
    """Name and version of the models applied to `board`."""
    core = CORES[board.core][0]
    name = f"{core.NAME}/{core.VERSION}"
    memory = memory_model(board)
    if memory is not None:
        name += f" + {memory.name}/{memory.version} ({memory.wait} wait states at {board.clock_hz / 1e6:g} MHz)"
    return name


def symbol_address(elf: Path, name: str) -> int:
    """Address of a function symbol (Thumb bit cleared)."""
    with elf.open("rb") as handle:
        table = ELFFile(handle).get_section_by_name(".symtab")
        for sym in table.iter_symbols():  # type: ignore[union-attr]
            if sym.name == name:
                return int(sym["st_value"]) & ~1
    raise KeyError(f"{name} is not in {elf}")


def qemu_trace_args(board: BoardProfile, elf: Path, out: Path, prompt_tokens: int, tokens: int) -> list[str]:
    """QEMU arguments that trace the first repetition's forward passes up to the last decode step's start."""
    memory = memory_model(board)
    window = (memory.data_window or (memory.base, memory.size)) if memory is not None and memory.wait else None
    limit = prompt_tokens + tokens - 2  # forwards at positions 0 .. P+N-3: every decode step but the last, bounded
    return plugin_args(out, flash=window, mark=symbol_address(elf, MARK_SYMBOL), limit=max(limit, 1))


@lru_cache(maxsize=8)
def program(elf: Path, core: str, mtime_ns: int) -> engine.Program:
    """The decoded instructions of `elf` for `core` (cached per file version)."""
    module, objdump, package = CORES[core]
    insns = {a: module.decode(a, s, m, o) for a, s, m, o in objdump_lines(elf, objdump, package)}
    return engine.Program(insns, lambda addr: module.decode(addr, 4, "nop", ""))


def predict_trace(trace: Trace, elf: Path, core: str, memory: ArtFlash | None) -> list[engine.SegmentCycles]:
    """Predicted cycles of every segment of a trace of `elf`."""
    module = CORES[core][0]
    return engine.predict(trace, program(elf, core, elf.stat().st_mtime_ns), module, memory)


def predict_decode(board: BoardProfile, elf: Path, trace_path: Path, prompt_tokens: int, tokens: int
                   ) -> DecodePrediction | None:
    """Decode steps of a run traced with `qemu_trace_args`; None when the run had fewer than 3 tokens."""
    memory = memory_model(board)
    trace = Trace.read(trace_path, marks=(symbol_address(elf, MARK_SYMBOL),))
    segments = predict_trace(trace, elf, board.core, memory)
    # segment k + 1 is the forward pass at position k; decode steps are positions P .. P+N-2, the last unbounded
    decode = segments[prompt_tokens + 1:prompt_tokens + tokens - 1]
    if not decode or any(s.instructions == 0 for s in decode):
        return None
    summed = engine.total(decode)
    n = len(decode)
    return DecodePrediction(model_name(board), n, summed.instructions / n, summed.cycles / n,
                            {k: v / n for k, v in summed.parts.items()})
