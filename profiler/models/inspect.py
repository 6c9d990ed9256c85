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

Nothing here knows of boards: a model against a board (flash and RAM margins,
the compute and bandwidth ceilings from the board's row and its core's row)
is `profiler.fit_check`.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.models.fit import arena_bytes, kv_cache_bytes
from profiler.models.format import QUANT_BITS, ModelConfig, ModelHeader


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


def _b(n: float) -> str:
    return f"{n:,.0f} B ({n / 1024:,.1f} KB)"


def model_lines(name: str, header: ModelHeader) -> list[str]:
    """The model half of the human report `model inspect` prints."""
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
    return lines
