"""The fixed-point forward pass arithmetic (boards without an FPU), bit-identical to
`firmware/core/fixed.c`, `forward_fx.c` and `matmul_fx*.c`.

`docs/model-format.md` "Fixed-point arithmetic" is the specification. Activations are
int32 Q16.16, held here in int64 arrays whose values stay in int32 range: every C
`(int32_t)` cast and every uint32 sum (which wraps mod 2^32) is `wrap32` here, every
arithmetic right shift is numpy's `>>` on int64 (floor, like the C on both compilers).
Model scales are read from their f32 bit patterns: no float arithmetic touches a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np

from profiler.models.format import ModelConfig, QuantTensor

i64 = np.int64
_M32 = 0xFFFFFFFF
ONE = 1 << 16  # 1.0 in Q16
EPS_Q32 = 42950  # round(1e-5 * 2^32)
LOG2E_Q16 = 94548  # round(log2(e) * 2^16)
EXP_MIN = -(1 << 22)  # exp arguments are clamped here (-64.0)
EXP2_COEFFS = (65536, 45414, 15835, 3389, 897)  # 2^f on [0, 1), Q16, f in Q15


def sigmoid_table() -> list[int]:
    """sigmoid(i/32) in Q15 for i = 0..512, the nearest integer to the exact value (50-digit decimals:
    no value is near a tie, so this is the same on every machine); `fixed.c` holds the same table."""
    with localcontext() as ctx:
        ctx.prec = 50
        return [int((Decimal(32768) / (1 + (Decimal(-i) / 32).exp())).to_integral_value(rounding=ROUND_HALF_UP))
                for i in range(513)]


SIGMOID_Q15 = np.array(sigmoid_table(), dtype=np.int64)


def wrap32(v: np.ndarray) -> np.ndarray:
    """int64 values reduced mod 2^32 to int32 range (the C `(int32_t)` cast)."""
    v = np.asarray(v, dtype=i64)
    return ((v + (1 << 31)) & _M32) - (1 << 31)


def shift32(v: np.ndarray, s: np.ndarray | int) -> np.ndarray:
    """`tp_fx_shift32`: floor(v / 2^min(s, 31)) for s >= 0, else v * 2^min(-s, 31) mod 2^32."""
    v, s = np.asarray(v, dtype=i64), np.asarray(s, dtype=i64)
    right = v >> np.clip(s, 0, 31)
    left = wrap32((v & _M32) << np.clip(-s, 0, 31))
    return np.where(s >= 0, right, left)


def bitlen(v: np.ndarray) -> np.ndarray:
    """Significant bits of non-negative integers below 2^53 (0 for 0); frexp is exact there."""
    return np.frexp(np.asarray(v, dtype=np.float64))[1].astype(i64)


def f32_bits(a: np.ndarray) -> np.ndarray:
    """The bit patterns of float32 values, as int64."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(i64)


def mulf(a: np.ndarray | int, bits: np.ndarray, frac: int) -> np.ndarray:
    """`tp_fx_mulf`: floor(a * f * 2^frac) for the f32 f with these bits, wrapped to int32;
    0 when f's exponent field is 0."""
    a, bits = np.asarray(a, dtype=i64), np.asarray(bits, dtype=i64)
    e = (bits >> 23) & 0xFF
    p = a * ((bits & 0x7FFFFF) | 0x800000)
    p = np.where(bits >> 31 != 0, -p, p)
    s = 150 - frac - e
    right = wrap32(p >> np.clip(s, 0, 63))
    left = np.where(-s > 31, 0, wrap32((p & _M32) << np.clip(-s, 0, 31)))
    return np.where(e == 0, 0, np.where(s >= 0, right, left))


@dataclass(frozen=True)
class Quantized:
    """`tp_fx_quantize` output: int8 values and per group (base + k, mantissa)."""

    q: np.ndarray  # int64 (..., n), values in [-127, 127]
    base: np.ndarray  # int64 (..., groups)
    mant: np.ndarray  # int64 (..., groups), 0 for an all-zero group


def quantize(x: np.ndarray, group_size: int, den: int, base: int) -> Quantized:
    """Symmetric int8 quantization of Q16 vectors along the last axis (groups of `group_size`)."""
    x = np.asarray(x, dtype=i64)
    n = x.shape[-1]
    groups = -(-n // group_size)
    pad = groups * group_size - n
    ax = np.abs(x)
    grouped = np.concatenate([ax, np.zeros((*x.shape[:-1], pad), dtype=i64)], axis=-1) if pad else ax
    grouped = grouped.reshape(*x.shape[:-1], groups, group_size)
    amax = grouped.max(axis=-1)  # (..., groups)
    length = bitlen(amax)
    drop = np.maximum(length - 23, 0)
    a2 = amax >> drop
    safe = np.where(amax == 0, 1, a2)[..., None]
    r = ((grouped >> drop[..., None]) * 254 + safe) // (2 * safe)
    r = np.where(amax[..., None] == 0, 0, r).reshape(*x.shape[:-1], groups * group_size)[..., :n]
    q = np.where(x < 0, -r, r)
    k = 12 + int(den).bit_length() - length
    num = np.where(k >= 0, amax << np.clip(k, 0, 63), amax >> np.clip(-k, 0, 63))
    m = num // den
    big = m >= 4096
    m = np.where(big, num // (2 * den), m)
    k = np.where(big, k - 1, k)
    zero = amax == 0
    return Quantized(q, np.where(zero, 0, base + k), np.where(zero, 0, m))


def query_den(head_size: int) -> int:
    """`tp_fx_query_den`: floor(127 * sqrt(head_size) * 256)."""
    return math.isqrt(127 * 127 * head_size << 16)


def exp_q30(d: np.ndarray) -> np.ndarray:
    """`tp_fx_exp`: exp of Q16 arguments <= 0, in Q30."""
    d = np.maximum(np.asarray(d, dtype=i64), EXP_MIN)
    y = (d * LOG2E_Q16) >> 16
    n = y >> 16
    f = (y & 0xFFFF) >> 1
    c0, c1, c2, c3, c4 = EXP2_COEFFS
    p = np.full_like(f, c4)
    for c in (c3, c2, c1, c0):
        p = ((p * f) >> 15) + c
    return np.where(-n > 31, 0, (p << 14) >> np.clip(-n, 0, 31))


def softmax_q30(x: np.ndarray) -> np.ndarray:
    """`tp_fx_softmax` along the last axis: Q16 scores to Q30 weights."""
    x = np.asarray(x, dtype=i64)
    e = exp_q30(np.maximum(x - x.max(axis=-1, keepdims=True), EXP_MIN))
    total = e.sum(axis=-1, keepdims=True)  # < 2^63: at most seq_len * 2^30
    r = ((1 << 62) - 1) // total
    return (e * r) >> 32


def swiglu(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`tp_fx_swiglu`: silu(a) * b in Q16, the sigmoid from SIGMOID_Q15 by linear interpolation."""
    a, b = np.asarray(a, dtype=i64), np.asarray(b, dtype=i64)
    mag = np.abs(a)
    inside = mag < (16 << 16)
    idx = np.where(inside, mag >> 11, 0)
    lo, hi = SIGMOID_Q15[idx], SIGMOID_Q15[idx + 1]
    s = np.where(inside, lo + (((hi - lo) * (mag & 0x7FF)) >> 11), 32768)
    sig = np.where(a >= 0, s, 32768 - s)
    silu = wrap32((a * sig) >> 15)
    return wrap32((silu * b) >> 16)


def rmsnorm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`tp_fx_rmsnorm` of each Q16 vector along the last axis with f32 weights `w`."""
    x = np.asarray(x, dtype=i64)
    rows = x.reshape(-1, x.shape[-1])
    n = x.shape[-1]
    inv = np.empty(rows.shape[0], dtype=i64)
    sh = np.empty(rows.shape[0], dtype=i64)
    for i, row in enumerate(rows):
        ss = sum(int(v) * int(v) for v in row) & ((1 << 64) - 1)
        ms = (ss // n + EPS_Q32) & ((1 << 64) - 1)
        jj = (62 - ms.bit_length()) >> 1
        msn = ms << (2 * jj) if jj >= 0 else ms >> (-2 * jj)
        inv[i] = (1 << 61) // math.isqrt(msn)
        sh[i] = 45 - jj
    nj = wrap32((rows * inv[:, None]) >> sh[:, None]).reshape(x.shape)
    return mulf(nj, f32_bits(w), 0)


def to_f32(x: np.ndarray) -> np.ndarray:
    """`tp_fx_to_f32`: Q16 integers to the nearest float32 (int32 to float32 rounds to
    nearest even; dividing by 2^16 is then exact)."""
    return np.asarray(x, dtype=np.int32).astype(np.float32) / np.float32(ONE)


def matmul_shift(config: ModelConfig) -> int:
    """Shift of the mantissa product in the matmul: acc * cm stays below 2^31."""
    bound = config.group_size * (8 if config.quant == "int4" else 128) * 127  # |w| <= 128 or 8
    return bound.bit_length() - 1


def attention_shift(config: ModelConfig) -> int:
    """Shift of the query x key scale mantissa product."""
    return max(0, (config.head_size * 127 * 127).bit_length() - 7)


@dataclass(frozen=True, eq=False)
class FxMatrix:
    """A quantized matrix laid out for the fixed-point matmul (matmul.h)."""

    q: np.ndarray  # float64 (groups, rows, group_size), integer values, zero padded
    e: np.ndarray  # int64 (groups, rows): f32 scale bits >> 23
    wm: np.ndarray  # int64 (groups, rows): 18-bit mantissa
    group_size: int
    cols: int
    shift: int

    @classmethod
    def of(cls, t: QuantTensor, shift: int) -> FxMatrix:
        groups = t.scales.shape[1]
        padded = np.zeros((t.rows, groups * t.group_size), dtype=np.float64)
        padded[:, :t.cols] = t.q
        q = np.ascontiguousarray(padded.reshape(t.rows, groups, t.group_size).transpose(1, 0, 2))
        bits = f32_bits(t.scales).T
        return cls(q, np.ascontiguousarray(bits >> 23), np.ascontiguousarray(((bits & 0x7FFFFF) | 0x800000) >> 6),
                   t.group_size, t.cols, shift)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """`W @ quant(x)` for one Q16 vector: (rows,) Q16."""
        xq = quantize(x, self.group_size, 127, 144 - self.shift)
        groups = self.q.shape[0]
        xpad = np.zeros(groups * self.group_size, dtype=np.float64)
        xpad[:self.cols] = xq.q
        acc = np.matmul(self.q, xpad.reshape(groups, self.group_size, 1))[:, :, 0].astype(i64)  # exact
        cm = (self.wm * xq.mant[:, None]) >> self.shift
        term = shift32(acc * cm, xq.base[:, None] - self.e)
        return wrap32(np.where(self.e == 0, 0, term).sum(axis=0))
