"""The host reference forward pass: bit-identical float32 to the firmware.

Every float operation follows `docs/model-format.md` in the same order. numpy's
`sum`/`dot`/`@` on floats reorder additions (pairwise, SIMD), so float sums here
are `np.cumsum` (a strictly sequential accumulate) or explicit loops over the
reduction axis, vectorised across the other axes. Integer group dot products are
exact in any order; they run as float64 matmuls on integer values (< 2^53).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from profiler.errors import ConfigError
from profiler.models import fixed as fx
from profiler.models.format import QuantTensor, TpmModel
from profiler.models.quantize import quantize_activations

f32 = np.float32
_ZERO = f32(0.0)
_ONE = f32(1.0)
_EPS = f32(1e-5)


def tp_exp(x: np.ndarray | float) -> np.ndarray:
    """The spec's exp: range reduction, degree-6 polynomial, exact 2^n scaling."""
    x = np.asarray(x, dtype=f32)
    # below -80 the result is 0 anyway; clipping there only keeps n a finite integer
    xc = np.clip(x, f32(-81.0), f32(80.0))
    n = np.floor(xc * f32(1.44269504) + f32(0.5))
    r = xc - n * f32(0.693145751953125)
    r = r - n * f32(1.428606765330187e-06)
    p = f32(1.38888889e-3) * r + f32(8.33333333e-3)
    p = p * r + f32(4.16666667e-2)
    p = p * r + f32(1.66666667e-1)
    p = p * r + f32(0.5)
    p = p * r + f32(1.0)
    p = p * r + f32(1.0)
    # n is within [-116, 116], so 2^n is a normal float32 and ldexp is exact
    out = p * np.ldexp(_ONE, n.astype(np.int32)).astype(f32)
    return np.where(x < f32(-80.0), _ZERO, out).astype(f32)


def seq_sum(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Left-to-right float32 sum from 0.0f along `axis` (cumsum is sequential; the final
    `+ 0` turns an all-(-0.0) sum into +0.0 as a loop starting at 0.0f would)."""
    return np.cumsum(a, axis=axis, dtype=f32).take(-1, axis=axis) + _ZERO


def rmsnorm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`w * (1/sqrt(mean(x^2) + 1e-5) * x)` in the spec's order, over the last axis."""
    ss = seq_sum(x * x)
    ss = ss / f32(x.shape[-1])
    ss = ss + _EPS
    ss = _ONE / np.sqrt(ss)
    return w * (ss[..., None] * x) if x.ndim > 1 else w * (ss * x)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax along the last axis with tp_exp and sequential sums."""
    e = tp_exp(x - np.max(x, axis=-1, keepdims=True))
    return e / seq_sum(e)[..., None]


@dataclass(frozen=True, eq=False)
class _Matrix:
    """A quantized matrix laid out for fast exact integer group products."""

    q: np.ndarray  # float64 (groups, rows, group_size), integer values, zero padded
    scales: np.ndarray  # float32 (groups, rows)
    group_size: int
    cols: int

    @classmethod
    def of(cls, t: QuantTensor) -> _Matrix:
        groups = t.scales.shape[1]
        padded = np.zeros((t.rows, groups * t.group_size), dtype=np.float64)
        padded[:, :t.cols] = t.q
        q = padded.reshape(t.rows, groups, t.group_size).transpose(1, 0, 2)
        return cls(np.ascontiguousarray(q), np.ascontiguousarray(t.scales.T), t.group_size,
                   t.cols)

    def matmat(self, x: np.ndarray) -> np.ndarray:
        """`matvec` of every row of `x` (T, cols) at once: (T, rows), the same float32 operations."""
        xq, xs = quantize_activations(x, self.group_size)  # (T, cols), (T, groups)
        groups, t = self.q.shape[0], x.shape[0]
        xpad = np.zeros((t, groups * self.group_size), dtype=np.float64)
        xpad[:, :self.cols] = xq
        acc = np.matmul(self.q, xpad.reshape(t, groups, self.group_size).transpose(1, 2, 0))  # (groups, rows, T)
        acc32 = acc.astype(f32)
        val = np.zeros((t, self.q.shape[1]), dtype=f32)
        for g in range(groups):
            val = val + (acc32[g].T * self.scales[g]) * xs[:, g:g + 1]
        return val

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """`W @ quant(x)`: per group an exact integer dot, then a float32 accumulation."""
        xq, xs = quantize_activations(x, self.group_size)
        groups = self.q.shape[0]
        xpad = np.zeros(groups * self.group_size, dtype=np.float64)
        xpad[:self.cols] = xq
        acc = np.matmul(self.q, xpad.reshape(groups, self.group_size, 1))[:, :, 0]
        acc32 = acc.astype(f32)  # |acc| < 2^31; rounds like the firmware's int-to-float
        val = np.zeros(self.q.shape[1], dtype=f32)
        for g in range(groups):
            val = val + (acc32[g] * self.scales[g]) * xs[g]
        return val


class Reference:
    """A model prepared for the reference forward pass; one instance per model and arithmetic.

    `fixed_point` selects the integer arithmetic of boards without an FPU (HELLO
    capability bit 5, `profiler.models.fixed`) instead of the f32 one; either way the
    logits come back as float32, bit-identical to that board's.
    """

    def __init__(self, model: TpmModel, fixed_point: bool = False) -> None:
        self.model = model
        self.fixed_point = fixed_point
        cfg = self.config = model.config
        self.layers = [[_Matrix.of(t) for t in layer.tensors()] for layer in model.layers]
        self.classifier = _Matrix.of(model.output_weights)
        self.embedding = model.embedding.dequantize()
        self.kv_of_head = np.arange(cfg.n_heads) // (cfg.n_heads // cfg.n_kv_heads)
        self.sqrt_head_size = np.sqrt(f32(cfg.head_size))
        # int8 KV cache: one quantization group per (position, kv head) vector, as on the board
        shape = (cfg.n_layers, cfg.seq_len, cfg.n_kv_heads, cfg.head_size)
        self.key_cache = np.zeros(shape, dtype=np.int8)
        self.value_cache = np.zeros(shape, dtype=np.int8)
        self.key_scale = np.zeros(shape[:3], dtype=f32)
        self.value_scale = np.zeros(shape[:3], dtype=f32)
        if fixed_point:
            self._init_fixed()

    def _init_fixed(self) -> None:
        cfg, m = self.config, self.model
        shift = fx.matmul_shift(cfg)
        self.fx_layers = [[fx.FxMatrix.of(t, shift) for t in layer.tensors()] for layer in m.layers]
        self.fx_classifier = fx.FxMatrix.of(m.output_weights, shift)
        self.fx_att_shift = fx.attention_shift(cfg)
        self.fx_q_den = fx.query_den(cfg.head_size)
        self.fx_rope = fx.mulf(1, fx.f32_bits(m.rope), 30)  # (seq_len, head_size/2, 2) Q30
        emb = m.embedding
        bits = fx.f32_bits(np.repeat(emb.scales, emb.group_size, axis=1)[:, :emb.cols])
        self.fx_embedding = fx.mulf(emb.q.astype(np.int64), bits, 16)  # (vocab, dim) Q16
        shape = (cfg.n_layers, cfg.seq_len, cfg.n_kv_heads)
        self.fx_key = np.zeros((*shape, cfg.head_size), dtype=np.int64)
        self.fx_value = np.zeros((*shape, cfg.head_size), dtype=np.int64)
        self.fx_key_base, self.fx_key_mant = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        self.fx_value_base, self.fx_value_mant = np.zeros(shape, np.int64), np.zeros(shape, np.int64)

    def _rope_fx(self, v: np.ndarray, pos: int) -> np.ndarray:
        c, s = self.fx_rope[pos, :, 0], self.fx_rope[pos, :, 1]
        pairs = v.reshape(-1, self.config.head_size // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return fx.wrap32(np.stack([(a * c - b * s) >> 30, (a * s + b * c) >> 30], axis=-1)).reshape(v.shape)

    def _forward_fx(self, token: int, pos: int, logits: bool) -> np.ndarray | None:
        """The fixed-point forward pass (firmware/core/forward_fx.c), operation by operation."""
        cfg, m = self.config, self.model
        hs, n_kv = cfg.head_size, cfg.n_kv_heads
        kvh = self.kv_of_head
        x = self.fx_embedding[token].copy()
        for layer, (wq, wk, wv, wo, w1, w2, w3) in enumerate(self.fx_layers):
            xb = fx.rmsnorm(x, m.rms_att[layer])
            q = self._rope_fx(wq.matvec(xb), pos)
            kq = fx.quantize(self._rope_fx(wk.matvec(xb), pos).reshape(n_kv, hs), hs, 127, 0)
            vq = fx.quantize(wv.matvec(xb).reshape(n_kv, hs), hs, 127, 0)
            self.fx_key[layer, pos] = kq.q
            self.fx_key_base[layer, pos], self.fx_key_mant[layer, pos] = kq.base[:, 0], kq.mant[:, 0]
            self.fx_value[layer, pos] = vq.q
            self.fx_value_base[layer, pos], self.fx_value_mant[layer, pos] = vq.base[:, 0], vq.mant[:, 0]
            qq = fx.quantize(q.reshape(cfg.n_heads, hs), hs, self.fx_q_den, 8 - self.fx_att_shift)
            t = pos + 1
            keys = self.fx_key[layer, :t][:, kvh]  # (T, heads, hs)
            dots = np.einsum("hi,thi->th", qq.q, keys)
            cm = (qq.mant[:, 0] * self.fx_key_mant[layer, :t][:, kvh]) >> self.fx_att_shift  # (T, heads)
            scores = fx.shift32(dots * cm, qq.base[:, 0] + self.fx_key_base[layer, :t][:, kvh])
            att = fx.softmax_q30(scores.T)  # (heads, T) Q30
            vm, vb = self.fx_value_mant[layer, :t][:, kvh].T, self.fx_value_base[layer, :t][:, kvh].T
            weight = fx.shift32((att >> 14) * vm, vb + 8)  # (heads, T) Q24
            values = self.fx_value[layer, :t][:, kvh]  # (T, heads, hs)
            xb = (fx.wrap32(np.einsum("ht,thi->hi", weight, values)) >> 8).reshape(cfg.dim)
            x = fx.wrap32(x + wo.matvec(xb))
            xb = fx.rmsnorm(x, m.rms_ffn[layer])
            hb = fx.swiglu(w1.matvec(xb), w3.matvec(xb))
            x = fx.wrap32(x + w2.matvec(hb))
        if not logits:
            return None
        return fx.to_f32(self.fx_classifier.matvec(fx.rmsnorm(x, m.rms_final)))

    def _rope(self, v: np.ndarray, pos: int) -> np.ndarray:
        cos, sin = self.model.rope[pos, :, 0], self.model.rope[pos, :, 1]
        pairs = v.reshape(-1, self.config.head_size // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(v.shape)

    def forward(self, token: int, pos: int, logits: bool = True) -> np.ndarray | None:
        """Run one token at `pos`; return its logits (float32) when asked."""
        if self.fixed_point:
            return self._forward_fx(token, pos, logits)
        cfg, m = self.config, self.model
        hs = cfg.head_size
        x = self.embedding[token].copy()
        for layer, (wq, wk, wv, wo, w1, w2, w3) in enumerate(self.layers):
            xb = rmsnorm(x, m.rms_att[layer])
            q = self._rope(wq.matvec(xb), pos)
            kq, ks = quantize_activations(self._rope(wk.matvec(xb), pos), hs)
            vq, vs = quantize_activations(wv.matvec(xb), hs)
            self.key_cache[layer, pos], self.key_scale[layer, pos] = kq.reshape(-1, hs), ks
            self.value_cache[layer, pos], self.value_scale[layer, pos] = vq.reshape(-1, hs), vs
            qq, qs = quantize_activations(q, hs)
            qscale = qs / self.sqrt_head_size  # (heads,)
            keys = self.key_cache[layer, :pos + 1][:, self.kv_of_head].astype(np.int64)  # (T, heads, hs)
            dots = np.einsum("hi,thi->th", qq.reshape(cfg.n_heads, hs).astype(np.int64), keys)
            kscale = self.key_scale[layer, :pos + 1][:, self.kv_of_head]  # (T, heads)
            att = softmax(((dots.astype(f32) * qscale) * kscale).T)  # (heads, T)
            weight = att.T * self.value_scale[layer, :pos + 1][:, self.kv_of_head]  # (T, heads)
            values = self.value_cache[layer, :pos + 1][:, self.kv_of_head].astype(f32)
            xb = seq_sum(weight[:, :, None] * values, axis=0).reshape(cfg.dim)
            x = x + wo.matvec(xb)
            xb = rmsnorm(x, m.rms_ffn[layer])
            hb, hb2 = w1.matvec(xb), w3.matvec(xb)
            hb = (hb / (_ONE + tp_exp(-hb))) * hb2
            x = x + w2.matvec(hb)
        if not logits:
            return None
        return self.classifier.matvec(rmsnorm(x, m.rms_final))

    def sequence_logits(self, tokens: list[int]) -> np.ndarray:
        """Logits (T, vocab) of every position of `tokens` run from position 0, bit-identical to
        `forward` position by position (and so to the board), computed for all positions at once.

        Causal masking keeps every float operation of a position: masked scores give
        exp = 0 exactly, and the zero terms they add come after the real ones in each
        left-to-right sum, where adding zero changes nothing.
        """
        cfg, m = self.config, self.model
        hs, t = cfg.head_size, len(tokens)
        if not 1 <= t <= cfg.seq_len:
            raise ConfigError(f"{t} tokens do not fit the model's context of {cfg.seq_len}; pass a shorter text")
        if self.fixed_point:
            # Position by position: each one writes its cache slot before it reads the slots up to it,
            # so this instance's cache serves as is (no second copy of the prepared matrices).
            rows = [self.forward(token, pos) for pos, token in enumerate(tokens)]
            return np.stack([r for r in rows if r is not None])
        cos, sin = m.rope[:t, :, 0][:, None, :], m.rope[:t, :, 1][:, None, :]

        def rope(v: np.ndarray, heads: int) -> np.ndarray:
            pairs = v.reshape(t, heads, hs // 2, 2)
            a, b = pairs[..., 0], pairs[..., 1]
            return np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(t, heads, hs)

        future = np.triu(np.ones((t, t), dtype=bool), 1)  # [pos, t2]: t2 > pos
        x = self.embedding[np.asarray(tokens)].copy()
        for layer, (wq, wk, wv, wo, w1, w2, w3) in enumerate(self.layers):
            xb = rmsnorm(x, m.rms_att[layer][None, :])
            q = rope(wq.matmat(xb), cfg.n_heads).reshape(t, cfg.dim)
            kq, ks = quantize_activations(rope(wk.matmat(xb), cfg.n_kv_heads).reshape(t, -1), hs)
            vq, vs = quantize_activations(wv.matmat(xb), hs)
            qq, qs = quantize_activations(q, hs)
            qscale = qs / self.sqrt_head_size  # (T, heads)
            keys = kq.reshape(t, cfg.n_kv_heads, hs)[:, self.kv_of_head].astype(np.int64)  # (t2, heads, hs)
            dots = np.einsum("phi,thi->pth", qq.reshape(t, cfg.n_heads, hs).astype(np.int64), keys)
            scores = (dots.astype(f32) * qscale[:, None, :]) * ks[:, self.kv_of_head][None]  # (pos, t2, heads)
            scores = np.where(future[:, :, None], f32(-np.inf), scores).transpose(0, 2, 1)  # (pos, heads, t2)
            att = softmax(scores).transpose(0, 2, 1)  # (pos, t2, heads)
            weight = att * vs[:, self.kv_of_head][None]
            values = vq.reshape(t, cfg.n_kv_heads, hs)[:, self.kv_of_head].astype(f32)  # (t2, heads, hs)
            xb = seq_sum(weight[..., None] * values[None], axis=1).reshape(t, cfg.dim)
            x = x + wo.matmat(xb)
            xb = rmsnorm(x, m.rms_ffn[layer][None, :])
            hb, hb2 = w1.matmat(xb), w3.matmat(xb)
            hb = (hb / (_ONE + tp_exp(-hb))) * hb2
            x = x + w2.matmat(hb)
        return self.classifier.matmat(rmsnorm(x, m.rms_final[None, :]))

    def generate(self, prompt: list[int], n_tokens: int, temperature: float = 0.0,
                 seed: int = 0) -> list[int]:
        """One RUN: prefill `prompt` at positions 0.., then exactly `n_tokens` new tokens."""
        cfg = self.config
        _check_run(prompt, n_tokens, cfg.vocab_size, cfg.seq_len)
        temp = f32(temperature)  # the board receives it as f32
        rng = XorShift64Star(seed)
        for pos, token in enumerate(prompt[:-1]):
            self.forward(token, pos, logits=False)
        out: list[int] = []
        token, pos = prompt[-1], len(prompt) - 1
        for _ in range(n_tokens):
            logits = self.forward(token, pos)
            assert logits is not None
            token = sample(logits, temp, rng)
            out.append(token)
            pos += 1
        return out


class XorShift64Star:
    """The firmware's sampling generator, seeded per RUN."""

    def __init__(self, seed: int) -> None:
        self.state = ((seed & 0xFFFFFFFF) ^ 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF

    def next_u32(self) -> int:
        """Next 32-bit output."""
        s = self.state
        s ^= s >> 12
        s ^= (s << 25) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 27
        self.state = s
        return ((s * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF) >> 32


def sample(logits: np.ndarray, temperature: np.float32, rng: XorShift64Star) -> int:
    """Greedy at temperature 0, else the spec's seeded draw from softmax(logits / T)."""
    if temperature == _ZERO:
        return int(np.argmax(logits))  # the first of equal maxima
    best = int(np.argmax(logits))
    with np.errstate(over="ignore"):
        if not np.isfinite(logits[best] / temperature):  # overflows: the limit is greedy
            return best
    probs = softmax(logits / temperature)
    coin = f32(rng.next_u32() >> 8) / f32(16777216.0)
    above = np.cumsum(probs, dtype=f32) > coin
    return int(np.argmax(above)) if above.any() else len(logits) - 1


def _check_run(prompt: list[int], n_tokens: int, vocab_size: int, seq_len: int) -> None:
    if not prompt or n_tokens < 1:
        raise ConfigError("a run needs at least one prompt token and one token to generate; "
                          "check the prompt and --tokens")
    bad = [t for t in prompt if not 0 <= t < vocab_size]
    if bad:
        raise ConfigError(f"prompt token {bad[0]} is outside the model's vocabulary of "
                          f"{vocab_size}; encode the prompt with this model's tokenizer")
    if len(prompt) + n_tokens - 1 > seq_len:
        raise ConfigError(f"{len(prompt)} prompt tokens + {n_tokens} new tokens need a "
                          f"context of {len(prompt) + n_tokens - 1} but the model has "
                          f"{seq_len}; shorten the prompt or lower --tokens")


def generate(model: TpmModel, prompt_tokens: list[int], n_tokens: int,
             temperature: float = 0.0, seed: int = 0, fixed_point: bool = False) -> list[int]:
    """The tokens the board produces for a RUN with these arguments (in its arithmetic)."""
    return Reference(model, fixed_point).generate(list(prompt_tokens), n_tokens, temperature, seed)
