"""A model against a board: `model inspect --device` and `model fit`.

The model's costs come from `profiler.models.inspect` (which knows nothing of
boards); the board's side from its row (platforms/boards.py: memory, flash read
bandwidth) and its core's row (platforms/cores.py: MACs per cycle). RAM:
weights stay in flash; the board needs its static RAM (.data + .bss), the
arena buffers of `profiler.models.fit` (activations and the KV cache for the
whole context) and its stack. The arena a board offers is read from the
firmware ELF (`__arena_start`/`__arena_end`, built on first use) when the
toolchain is there, else estimated from the board profile; the report says which.

Ceilings, stated as assumptions: compute-bound `clock * MACs per cycle / MACs
per token`, and bandwidth-bound `flash bytes per second / flash bytes per token`.
"""

from __future__ import annotations

from dataclasses import dataclass

from platforms import adapter_for
from platforms.boards import BoardProfile
from profiler.errors import ProfilerError
from profiler.models.format import ModelHeader
from profiler.models.inspect import costs, model_lines

_STACK_ESTIMATE = 8 * 1024
_STATIC_ESTIMATE = 4 * 1024


@dataclass(frozen=True)
class BoardFit:
    """A model against one board: flash, RAM and throughput ceilings."""

    board: BoardProfile
    model_bytes: int
    arena_total_bytes: int
    static_ram_bytes: int
    stack_bytes: int
    ram_source: str
    macs_per_cycle: float
    macs_note: str
    flash_bytes_per_s: float | None
    flash_note: str

    @property
    def flash_margin(self) -> int:
        """Bytes left in the model flash region (negative: too large)."""
        return self.board.model_region_bytes - self.model_bytes

    def arena_margin(self, need: int) -> int:
        """Arena bytes left after the model's buffers (negative: too large)."""
        return self.arena_total_bytes - need


def board_fit(board: BoardProfile, header: ModelHeader, build_firmware: bool = True) -> BoardFit:
    """Flash and RAM of `board` for the model of `header`, the arena from the firmware ELF when possible."""
    source = "board profile estimate (firmware not built)"
    static, arena = _STATIC_ESTIMATE, board.sram_bytes - _STATIC_ESTIMATE - _STACK_ESTIMATE
    if build_firmware:
        try:
            image = adapter_for(board).firmware(board)
            static, arena = image.static_ram_bytes, image.arena_total_bytes
            source = f"firmware ELF {image.firmware_id} (__arena_start..__arena_end)"
        except ProfilerError as exc:
            source = f"board profile estimate ({str(exc).split(';')[0]})"
    core = board.core_facts
    return BoardFit(board, header.file_bytes, arena, static, max(board.sram_bytes - static - arena, 0), source,
                    core.macs_per_cycle, core.macs_note, board.flash_read_bytes_per_s, board.flash_read_note)


def _b(n: float) -> str:
    return f"{n:,.0f} B ({n / 1024:,.1f} KB)"


def report_lines(name: str, header: ModelHeader, fit: BoardFit | None) -> list[str]:
    """The human report `model inspect` prints: the model, then (with a board) how it fits."""
    lines = model_lines(name, header)
    if fit is None:
        return lines
    c = costs(header.config)
    board, need = fit.board, c.arena_bytes
    peak = fit.static_ram_bytes + need + fit.stack_bytes
    flash_ok, ram_ok = fit.flash_margin >= 0, fit.arena_margin(need) >= 0
    lines += [
        f"board        {board.name}: {board.core} at {board.clock_hz / 1e6:g} MHz, {board.sram_bytes // 1024} KB RAM, "
        f"{board.flash_bytes // 1024} KB flash",
        f"flash        {'fits' if flash_ok else 'DOES NOT FIT'}: {_b(fit.model_bytes)} of the "
        f"{_b(board.model_region_bytes)} model region, margin {_b(fit.flash_margin)} "
        f"({100 * fit.flash_margin / board.model_region_bytes:.1f}%)",
        f"RAM          {'fits' if ram_ok else 'DOES NOT FIT'}: {_b(need)} of the {_b(fit.arena_total_bytes)} arena, "
        f"margin {_b(fit.arena_margin(need))} ({100 * fit.arena_margin(need) / max(fit.arena_total_bytes, 1):.1f}%); "
        f"peak RAM {_b(peak)} = static {_b(fit.static_ram_bytes)} + arena + stack {_b(fit.stack_bytes)}",
        f"arena from   {fit.ram_source}",
        f"compute      {board.clock_hz * fit.macs_per_cycle / c.macs_mean:,.1f} tokens/s ceiling at "
        f"{fit.macs_per_cycle:g} MACs/cycle ({fit.macs_note})",
    ]
    if fit.flash_bytes_per_s is not None:
        lines.append(f"bandwidth    {fit.flash_bytes_per_s / c.flash_bytes_per_token:,.1f} tokens/s ceiling at "
                     f"{fit.flash_bytes_per_s / 1e6:,.0f} MB/s ({fit.flash_note})")
    else:
        lines.append(f"bandwidth    no ceiling: {fit.flash_note}")
    lines.append(f"verdict      {'fits' if flash_ok and ram_ok else 'does not fit'} {board.name}")
    return lines


def fit_table(header: ModelHeader, boards: list[BoardProfile], build_firmware: bool = False) -> list[str]:
    """`model fit`: one line per board, fits or not (flash and RAM with margins) and the tokens/s ceilings."""
    c = costs(header.config)
    rows = [("board", "core", "MHz", "flash region", "flash margin", "arena", "RAM margin", "fits",
             "compute tok/s", "bandwidth tok/s")]
    for board in boards:
        fit = board_fit(board, header, build_firmware=build_firmware)
        flash_margin, ram_margin = fit.flash_margin, fit.arena_margin(c.arena_bytes)
        bandwidth = "-" if fit.flash_bytes_per_s is None else f"{fit.flash_bytes_per_s / c.flash_bytes_per_token:,.1f}"
        rows.append((board.name, board.core, f"{board.clock_hz / 1e6:g}", f"{board.model_region_bytes / 2**20:,.2f} MB",
                     f"{flash_margin / 2**20:+,.2f} MB", f"{fit.arena_total_bytes / 1024:,.0f} KB",
                     f"{ram_margin / 1024:+,.0f} KB", "yes" if flash_margin >= 0 and ram_margin >= 0 else "NO",
                     f"{board.clock_hz * fit.macs_per_cycle / c.macs_mean:,.1f}", bandwidth))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.append(f"model {header.file_bytes:,} bytes, needs {c.arena_bytes:,} bytes of arena; ceilings: compute "
                 "at the core's MACs per cycle, bandwidth from the memory that holds the model "
                 "(`model inspect --device` says which)")
    return lines
