"""STM32F4 embedded flash behind the ART accelerator: memory model `stm32f4-art/1`.

Source: ST RM0090 (STM32F405/415/407/417/427/437/429/439 reference manual), section "Embedded Flash
memory interface": the flash is read 128 bits at a time; at 168 MHz and 2.7-3.6 V it needs 5 wait
states (one per started 30 MHz of HCLK, table "Number of wait states according to CPU clock"); the
ART accelerator has an instruction prefetch queue (the next sequential 128-bit line is read while the
current one executes), an instruction cache of 64 lines of 128 bits and a data cache of 8 lines of
128 bits (literal pools and, for our firmware, the weights read in place from flash).

Model, per executed instruction line and per flash data line a load touches:
- a line in the cache (least recently used replacement over the whole cache: RM0090 does not give the
  organisation) or, for instructions, the line after the one last fetched (the prefetch queue): no stall;
- otherwise the flash read: WAIT_STATES cycles on top of the core's own timing, and the line enters
  the cache.

The profiler traces the data loads of the model region only (`data_window`): the weights, read in a
fixed order. Loads from the firmware's own flash (literal pools, the 1 KB CRC table of the wire
protocol) are taken to hit; the CRC table's lookups depend on frame contents that vary between runs
(sequence numbers), and cost a few dozen cycles per token.

Left out: a prefetch that has not finished when sequential code runs through a line in fewer than
WS + 1 cycles, contention between instruction and data reads of the flash, and RAM (no wait states).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from profiler.cycles.trace import LINE_BYTES, TAG_EXEC, TAG_LINE, Trace

NAME = "stm32f4-art"
VERSION = 1
HZ_PER_WAIT_STATE = 30_000_000  # RM0090, 2.7 to 3.6 V


def wait_states(clock_hz: int) -> int:
    """Flash wait states RM0090 requires at `clock_hz` (2.7 to 3.6 V supply)."""
    return max(0, math.ceil(clock_hz / HZ_PER_WAIT_STATE) - 1)


@dataclass
class ArtFlash:
    """The flash window, its wait states and the ART's caches; `stalls` walks a trace through them."""

    base: int  # the flash, for instruction fetches
    size: int
    wait: int
    data_window: tuple[int, int] | None = None  # (base, size) of the data loads traced; None: the whole flash
    icache_lines: int = 64
    dcache_lines: int = 8
    prefetch: bool = True
    name: str = NAME
    version: int = VERSION
    categories: tuple[str, ...] = ("flash instruction wait", "flash data wait")

    def stalls(self, trace: Trace, lines_of: Callable[[int], tuple[int, ...]], segments: int) -> np.ndarray:
        out = np.zeros((segments, 2), dtype=np.int64)
        if self.wait == 0:
            return out
        lo, hi = self.base // LINE_BYTES, (self.base + self.size) // LINE_BYTES
        data_lo = self.data_window[0] // LINE_BYTES if self.data_window else lo
        icache: OrderedDict[int, None] = OrderedDict()
        dcache: OrderedDict[int, None] = OrderedDict()
        starts = trace.segment_starts
        seg, next_start = 0, starts[0] if starts else -1
        last_line = -2
        flash_lines: dict[int, tuple[int, ...]] = {}
        tags, values = trace.tags.tolist(), trace.values.tolist()
        for i, tag in enumerate(tags):
            if i == next_start:
                seg += 1
                next_start = starts[seg] if seg < len(starts) else -1
            if tag == TAG_EXEC:
                block = values[i]
                lines = flash_lines.get(block)  # its repeats (TAG_REPEAT) find these lines cached
                if lines is None:
                    lines = flash_lines[block] = tuple(x for x in lines_of(block) if lo <= x < hi)
                for line in lines:
                    if line in icache:
                        icache.move_to_end(line)
                    else:
                        if not (self.prefetch and line == last_line + 1):
                            out[seg, 0] += self.wait
                        icache[line] = None
                        if len(icache) > self.icache_lines:
                            icache.popitem(last=False)
                    last_line = line
            elif tag == TAG_LINE:
                line = data_lo + values[i]
                if line in dcache:
                    dcache.move_to_end(line)
                else:
                    out[seg, 1] += self.wait
                    dcache[line] = None
                    if len(dcache) > self.dcache_lines:
                        dcache.popitem(last=False)
        return out
