"""Symmetric int8 group quantization of weights (offline) and activations (per token).

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


def _quantize_groups(x: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Spec quantizer over the last axis of float32 `x`: (int8 q, float32 scales)."""
    x = np.asarray(x, dtype=np.float32)
    cols = x.shape[-1]
    grouped = _padded_groups(x, group_size)  # zero padding never raises a group's max
    amax = np.max(np.abs(grouped), axis=-1)
    scale = amax / _F127
    nonzero = scale != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        v = grouped / np.where(nonzero, scale, np.float32(1))[..., None]
    r = np.floor(np.abs(v) + _HALF)
    q = np.where(v < 0, -r, r)
    q = np.where(nonzero[..., None], np.clip(q, -127, 127), 0).astype(np.int8)
    q = q.reshape(*x.shape[:-1], -1)[..., :cols]
    return q, scale.astype(np.float32)


def quantize_rows(w: np.ndarray, group_size: int) -> QuantTensor:
    """Quantize a float32 rows x cols matrix: one scale `amax/127` per group of a row."""
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {w.shape}")
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    q, scales = _quantize_groups(w, group_size)
    return QuantTensor(np.ascontiguousarray(q), np.ascontiguousarray(scales), group_size)


def quantize_activations(x: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The forward pass's `quant(x)` of a float32 vector: (int8 q[n], float32 scale[groups])."""
    return _quantize_groups(x, group_size)
