"""Symmetric group quantization: weights offline (int8 or int4), activations per token (int8).

The activation quantizer is part of the forward pass, so it follows
`docs/model-format.md` operation by operation in float32; the board does the same.
"""

from __future__ import annotations

import math

import numpy as np

from profiler.models.format import QuantTensor

_F127 = np.float32(127.0)
_HALF = np.float32(0.5)


def _padded_groups(x: np.ndarray, group_size: int) -> np.ndarray:
    """View the last axis as (groups, group_size), padding the short last group with zeros."""
    cols = x.shape[-1]
    groups = math.ceil(cols / group_size)
    pad = groups * group_size - cols
    if pad:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], pad), dtype=x.dtype)], axis=-1)
    return x.reshape(*x.shape[:-1], groups, group_size)


def _quantize_groups(x: np.ndarray, group_size: int, qmax: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Spec quantizer over the last axis of float32 `x`: (int8 q in [-qmax, qmax], float32 scales)."""
    x = np.asarray(x, dtype=np.float32)
    cols = x.shape[-1]
    grouped = _padded_groups(x, group_size)  # zero padding never raises a group's max
    amax = np.max(np.abs(grouped), axis=-1)
    scale = amax / (_F127 if qmax == 127 else np.float32(qmax))
    nonzero = scale != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        v = grouped / np.where(nonzero, scale, np.float32(1))[..., None]
    r = np.floor(np.abs(v) + _HALF)
    q = np.where(v < 0, -r, r)
    q = np.where(nonzero[..., None], np.clip(q, -qmax, qmax), 0).astype(np.int8)
    q = q.reshape(*x.shape[:-1], -1)[..., :cols]
    return q, scale.astype(np.float32)


def quantize_rows(w: np.ndarray, group_size: int, bits: int = 8) -> QuantTensor:
    """Quantize a float32 rows x cols matrix: one scale per group of a row, `amax/127` for
    int8 (values in [-127, 127]) or `amax/7` for int4 (values in [-7, 7])."""
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {w.shape}")
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    q, scales = _quantize_groups(w, group_size, 127 if bits == 8 else 7)
    return QuantTensor(np.ascontiguousarray(q), np.ascontiguousarray(scales), group_size, bits)


def quantize_activations(x: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The forward pass's `quant(x)` of a float32 vector: (int8 q[n], float32 scale[groups])."""
    return _quantize_groups(x, group_size)
