"""Apply a core's cycle model (and a memory model) to a trace: predicted cycles per segment.

Deterministic: the same trace and ELF give the same figures. A block's own cost is computed once
(its instructions in order, each after its predecessor); what crossing from one block to the next
adds (a taken branch's refill, the pair rules between the last instruction and the first) once per
distinct pair of blocks; both are then multiplied by how often they happened. A memory model, when
the board has one (flash wait states behind caches), walks the stream in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

import numpy as np

from profiler.cycles.disasm import Insn
from profiler.cycles.trace import Trace


class MemoryModel(Protocol):
    """Stall cycles of the memory system, walked over the trace in order."""

    name: str
    version: int
    categories: tuple[str, ...]

    def stalls(self, trace: Trace, lines_of: Callable[[int], tuple[int, ...]], segments: int) -> np.ndarray:
        """(segments, len(categories)) stall cycles."""
        ...


@dataclass(frozen=True)
class SegmentCycles:
    """Predicted cycles of one segment of a trace."""

    instructions: int
    cycles: int
    parts: dict[str, int] = field(default_factory=dict)  # cycles by category (issue, load, flash...)

    @property
    def cpi(self) -> float:
        return self.cycles / self.instructions if self.instructions else float("nan")


@dataclass
class Program:
    """The instructions of an ELF by address, decoded for one core."""

    insns: dict[int, Insn]
    fallback: Callable[[int], Insn]  # an address objdump did not list (boot ROM, generated code)

    def at(self, addr: int) -> Insn:
        found = self.insns.get(addr)
        return found if found is not None else self.fallback(addr)


def predict(trace: Trace, program: Program, core: ModuleType, memory: MemoryModel | None = None
            ) -> list[SegmentCycles]:
    """Predicted cycles of every segment of `trace` (segment 0 runs up to the first mark)."""
    categories = list(core.CATEGORIES) + (list(memory.categories) if memory else [])
    col = {c: i for i, c in enumerate(categories)}
    n_seg = len(trace.segment_starts) + 1
    pos, ids, counts = trace.executions()
    seg = trace.segment_of(pos)
    block_insns: dict[int, list[Insn]] = {b: [program.at(a) for a in addrs] for b, addrs in trace.blocks.items()}

    # own cost of every block, times how often it ran, per segment
    width = max(block_insns, default=0) + 1
    own = np.zeros((width, len(categories)), dtype=np.int64)
    n_insns = np.zeros(width, dtype=np.int64)
    for b, insns in block_insns.items():
        n_insns[b] = len(insns)
        for cat, n in core.sequence_cycles(insns).items():
            own[b, col[cat]] += n
    parts = np.zeros((n_seg, len(categories)), dtype=np.int64)
    np.add.at(parts, seg, own[ids] * counts[:, None])
    instructions = np.bincount(seg, weights=n_insns[ids] * counts, minlength=n_seg).astype(np.int64)

    # transitions: into a block from the one before it (and from itself, for its repeats)
    if len(ids) > 1:
        keys = np.concatenate([ids[:-1] * width + ids[1:], ids * width + ids])
        weights = np.concatenate([np.ones(len(ids) - 1, dtype=np.int64), counts - 1])
        where = np.concatenate([seg[1:], seg])
        keep = weights > 0
        keys, weights, where = keys[keep], weights[keep], where[keep]
        unique, inverse = np.unique(keys, return_inverse=True)
        edge = np.zeros((len(unique), len(categories)), dtype=np.int64)
        for i, key in enumerate(unique.tolist()):
            a, b = divmod(key, width)
            if not block_insns.get(a) or not block_insns.get(b):
                continue
            last, first = block_insns[a][-1], block_insns[b][0]
            taken = first.addr != last.addr + last.size
            for cat, n in core.edge_cycles(last, first, taken).items():
                edge[i, col[cat]] += n
        np.add.at(parts, where, edge[inverse] * weights[:, None])

    if memory is not None:
        lines: dict[int, tuple[int, ...]] = {}

        def lines_of(block: int) -> tuple[int, ...]:
            found = lines.get(block)
            if found is None:
                found = lines[block] = _fetch_lines(block_insns.get(block, []))
            return found

        parts[:, len(core.CATEGORIES):] += memory.stalls(trace, lines_of, n_seg)

    return [SegmentCycles(int(instructions[s]), int(parts[s].sum()),
                          {c: int(parts[s, i]) for i, c in enumerate(categories) if parts[s, i]})
            for s in range(n_seg)]


def _fetch_lines(insns: Sequence[Insn]) -> tuple[int, ...]:
    """The 16-byte instruction lines a block fetches, in order (absolute line numbers)."""
    out: list[int] = []
    for insn in insns:
        for line in {insn.addr >> 4, (insn.addr + insn.size - 1) >> 4}:
            if not out or out[-1] != line:
                out.append(line)
    return tuple(out)


def total(segments: Sequence[SegmentCycles]) -> SegmentCycles:
    """The sum of some segments."""
    parts: dict[str, int] = {}
    for s in segments:
        for k, v in s.parts.items():
            parts[k] = parts.get(k, 0) + v
    return SegmentCycles(sum(s.instructions for s in segments), sum(s.cycles for s in segments), parts)
