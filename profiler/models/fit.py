"""Will a model fit a board? Flash for the image, RAM for the forward-pass buffers.

`arena_bytes` mirrors the firmware's allocation list in `docs/model-format.md`
(same buffers, same order, each rounded up to 8 bytes); a QEMU test compares it
with the `arena_used_bytes` the board reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from profiler.errors import FitError
from profiler.models.format import ModelConfig

_ALIGN = 8


def _round(n: int) -> int:
    return n + (-n % _ALIGN)


def arena_buffers(config: ModelConfig) -> list[tuple[str, int]]:
    """(name, rounded bytes) of each arena buffer, in allocation order."""
    c = config
    m = max(c.dim, c.hidden_dim)
    slots = c.n_layers * c.seq_len  # the KV cache is int8 with one f32 scale per (position, kv head)
    sizes = [
        ("x", 4 * c.dim), ("xb", 4 * c.dim), ("xb2", 4 * c.dim),
        ("hb", 4 * c.hidden_dim), ("hb2", 4 * c.hidden_dim),
        ("q", 4 * c.dim), ("att", 4 * c.n_heads * c.seq_len), ("logits", 4 * c.vocab_size),
        ("xq.q", m), ("xq.scale", 4 * math.ceil(m / c.group_size)),
        ("qq.q", c.dim), ("qq.scale", 4 * c.n_heads),
        ("key_cache", slots * c.kv_dim), ("key_scale", 4 * slots * c.n_kv_heads),
        ("value_cache", slots * c.kv_dim), ("value_scale", 4 * slots * c.n_kv_heads),
    ]
    return [(name, _round(size)) for name, size in sizes]


def arena_bytes(config: ModelConfig) -> int:
    """RAM the firmware allocates from its arena for this model."""
    return sum(size for _, size in arena_buffers(config))


def kv_cache_bytes(config: ModelConfig) -> int:
    """Bytes of the key and value caches together (part of `arena_bytes`)."""
    return sum(size for name, size in arena_buffers(config) if name.startswith(("key_", "value_")))


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB ({n:,} bytes)"


@dataclass(frozen=True)
class FitReport:
    """How much of the board's model flash region and arena a model uses."""

    model_bytes: int
    flash_region_bytes: int
    arena_bytes: int
    arena_total_bytes: int


def check_fit(model_bytes: int, config: ModelConfig, flash_region_bytes: int,
              arena_total_bytes: int, board: str = "board") -> FitReport:
    """Raise FitError when the image or its buffers do not fit; else report the usage."""
    if model_bytes > flash_region_bytes:
        raise FitError(f"model is {_kb(model_bytes)} but the {board} model flash region has "
                       f"{_kb(flash_region_bytes)}; use a smaller model or choose a board "
                       "with more flash")
    need = arena_bytes(config)
    if need > arena_total_bytes:
        raise FitError(f"model needs {need / 1024:.1f} KB of RAM ({need:,} bytes) for its buffers but the {board} "
                       f"arena has {_kb(arena_total_bytes)}; lower seq_len with `model "
                       "convert --seq-len` or choose a board with more RAM")
    return FitReport(model_bytes, flash_region_bytes, need, arena_total_bytes)
