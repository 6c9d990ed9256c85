"""`tiny-profiler model inspect`: what a model costs per token and whether it fits a board.

Everything comes from the 64-byte header (the file is never fully read): the
shape, the quantization and the file size. Per token:

- MACs: the seven weight matrices of every layer plus the classifier (the
  embedding is a table lookup), and attention (scores and the weighted sum of
  values, `2 * n_heads * head_size` per cached position and layer), given at
  full context and averaged over positions 0..seq_len-1;
- flash bytes: every weight matrix streamed once (integers and scales), one
  embedding row, the norm weights and one row of the RoPE table;
- RAM bytes: the key and value rows of the cached positions (mean over the context).

RAM: weights stay in flash; the board needs its static RAM (.data + .bss), the
arena buffers of `profiler.models.fit` (activations and the KV cache for the
whole context) and its stack. The arena a board offers is read from the
firmware ELF (`__arena_start`/`__arena_end`, built on first use) when the
toolchain is there, else estimated from the board profile; the report says which.

Ceilings, stated as assumptions per core and per board (`CORE_MACS_PER_CYCLE`,
`FLASH_BANDWIDTH`): compute-bound `clock * MACs per cycle / MACs per token`, and
bandwidth-bound `flash bytes per second / flash bytes per token`.
"""

from __future__ import annotations

from dataclasses import dataclass

from platforms.boards import BoardProfile
from profiler.errors import ProfilerError
from profiler.models.fit import arena_bytes, kv_cache_bytes
from profiler.models.format import QUANT_BITS, ModelConfig, ModelHeader

# Multiply-accumulates per cycle the core can sustain on int8 operands (an upper bound).
CORE_MACS_PER_CYCLE: dict[str, tuple[float, str]] = {
    "cortex-m4f": (2.0, "SMLAD: two 16-bit MACs a cycle on sign-extended int8 pairs"),
    "cortex-m4": (2.0, "SMLAD: two 16-bit MACs a cycle on sign-extended int8 pairs"),
    "cortex-m7": (2.0, "SMLAD: two 16-bit MACs a cycle (dual issue not counted)"),
    "cortex-m55": (8.0, "Helium VMLADAV: sixteen int8 MACs in two beats"),
    "rv32imc": (1.0, "one MUL a cycle, no MAC or SIMD instruction (the add and loads not counted)"),
    "rv32imac": (1.0, "one MUL a cycle, no MAC or SIMD instruction (the add and loads not counted)"),
    "xtensa-lx6": (1.0, "MAC16 unit: one 16-bit MAC a cycle"),
    "xtensa-lx7": (16.0, "PIE SIMD (EE.VMULAS.S8): sixteen int8 MACs a cycle"),
}
DEFAULT_MACS = (1.0, "assumed one MAC a cycle (core not in the table)")

# Sustained sequential read bandwidth of the memory the model is read from, bytes per second.
FLASH_BANDWIDTH: dict[str, tuple[float, str]] = {
    "stm32f405": (16 / 6 * 168e6, "128-bit flash line per 6 cycles (5 wait states at 168 MHz)"),
    "stm32h743": (32 / 5 * 240e6, "256-bit flash line per 5 AXI cycles at 240 MHz"),
    "stm32n657": (400e6, "external octo-SPI NOR, octal DTR at 200 MHz (XSPI2), memory-mapped"),
    "mps2-an500": (32 / 5 * 240e6, "modelled: the stm32h743's flash (QEMU's SSRAM has no limit)"),
    "mps3-an547": (400e6, "modelled: the stm32n657's octo-SPI NOR (QEMU's DDR has no limit)"),
    "esp32": (40e6, "external SPI flash, quad I/O at 80 MHz, through the cache"),
    "esp32s3": (40e6, "external SPI flash, quad I/O at 80 MHz, through the cache"),
    "esp32c3": (40e6, "external SPI flash, quad I/O at 80 MHz, through the cache"),
    "riscv": (4 * 125e6, "modelled: one 32-bit load a cycle from pflash"),
    "gd32vf103": (4 / 3 * 108e6, "32-bit flash word per 3 cycles (2 wait states at 108 MHz)"),
}
_STACK_ESTIMATE = 8 * 1024
_STATIC_ESTIMATE = 4 * 1024


@dataclass(frozen=True)
class Costs:
    """Per-token work of one model."""

    params: int
    weight_macs: int
    attention_macs_full: int  # at the last position of the context
    attention_macs_mean: float  # averaged over positions 0..seq_len-1
    flash_bytes_per_token: int
    kv_bytes_per_token_mean: float
    arena_bytes: int
    kv_cache_bytes: int

    @property
    def macs_mean(self) -> float:
        """Weight MACs plus mean attention MACs."""
        return self.weight_macs + self.attention_macs_mean


def _tensor_bytes(rows: int, cols: int, cfg: ModelConfig) -> int:
    row = cols if QUANT_BITS[cfg.quant] == 8 else (cols + 1) // 2
    ints = rows * row
    groups = -(-cols // cfg.group_size)
    return ints + (-ints % 4) + 4 * rows * groups


def costs(cfg: ModelConfig) -> Costs:
    """MACs, bytes and RAM per token of a model of shape `cfg`."""
    d, h, kv, n = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.n_layers
    shapes = ((d, d), (kv, d), (kv, d), (d, d), (h, d), (d, h), (h, d))
    weight_macs = n * sum(r * c for r, c in shapes) + cfg.vocab_size * d
    per_position = 2 * n * cfg.n_heads * cfg.head_size
    layer_bytes = n * sum(_tensor_bytes(r, c, cfg) for r, c in shapes)
    embedding_row = _tensor_bytes(1, d, cfg)
    flash = (layer_bytes + _tensor_bytes(cfg.vocab_size, d, cfg) + embedding_row
             + 4 * (2 * n * d + d) + 4 * cfg.head_size)
    mean_positions = (cfg.seq_len + 1) / 2
    return Costs(
        params=cfg.n_params,
        weight_macs=weight_macs,
        attention_macs_full=per_position * cfg.seq_len,
        attention_macs_mean=per_position * mean_positions,
        flash_bytes_per_token=flash,
        kv_bytes_per_token_mean=2 * 4 * n * kv * mean_positions,
        arena_bytes=arena_bytes(cfg),
        kv_cache_bytes=kv_cache_bytes(cfg),
    )


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
            from platforms import adapter_for

            image = adapter_for(board).firmware(board)
            static, arena = image.static_ram_bytes, image.arena_total_bytes
            source = f"firmware ELF {image.firmware_id} (__arena_start..__arena_end)"
        except ProfilerError as exc:
            source = f"board profile estimate ({str(exc).split(';')[0]})"
    macs, macs_note = CORE_MACS_PER_CYCLE.get(board.core, DEFAULT_MACS)
    bandwidth, flash_note = FLASH_BANDWIDTH.get(board.name, (None, "flash bandwidth unknown for this board"))
    return BoardFit(board, header.file_bytes, arena, static, max(board.sram_bytes - static - arena, 0), source,
                    macs, macs_note, bandwidth, flash_note)


def _b(n: float) -> str:
    return f"{n:,.0f} B ({n / 1024:,.1f} KB)"


def report_lines(name: str, header: ModelHeader, fit: BoardFit | None) -> list[str]:
    """The human report `model inspect` prints."""
    cfg, c = header.config, costs(header.config)
    classifier = "shared with the embedding" if cfg.shared_classifier else "separate"
    lines = [
        f"model        {name}",
        f"architecture llama: dim {cfg.dim}, hidden {cfg.hidden_dim}, {cfg.n_layers} layers, "
        f"{cfg.n_heads} heads / {cfg.n_kv_heads} kv heads (head size {cfg.head_size}), vocab {cfg.vocab_size}, "
        f"context {cfg.seq_len}, classifier {classifier}",
        f"weights      {cfg.quant} in groups of {cfg.group_size}",
        f"parameters   {c.params:,}",
        f"MACs/token   {c.macs_mean:,.0f} = {c.weight_macs:,} weights + {c.attention_macs_mean:,.0f} attention "
        f"(mean over the context; {c.attention_macs_full:,} at position {cfg.seq_len - 1})",
        f"bytes/token  {_b(c.flash_bytes_per_token)} of weights from flash + {_b(c.kv_bytes_per_token_mean)} "
        "of KV cache from RAM (mean over the context)",
        f"file size    {_b(header.file_bytes)} (stays in flash, read in place)",
        f"RAM needed   {_b(c.arena_bytes)} arena: KV cache {_b(c.kv_cache_bytes)} for {cfg.seq_len} positions + "
        f"activations {_b(c.arena_bytes - c.kv_cache_bytes)}",
    ]
    if fit is None:
        return lines
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
