"""Quantization error on the host: a quantized model against its float32 weights, on a text.

The text is tokenized (one story or paragraph per non-empty line, each starting
with BOS), joined, and cut into windows of the model's `seq_len` tokens; every
position of a window predicts the next token. The quantized model's logits come
from the bit-exact reference (`Reference.sequence_logits`, what the board
computes), the float model's from an ordinary float32 forward pass. Reported:
top-1 agreement (the quantized argmax equals the float argmax), the mean
KL(P_fp32 || P_quant) in nats, and the perplexity of both on the text's tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from profiler.errors import ConfigError, ModelError
from profiler.models.format import TpmModel, rope_table
from profiler.models.llama2c import FloatWeights
from profiler.models.reference import Reference
from profiler.models.tokenizer import Tokenizer

_EPS = 1e-5


@dataclass(frozen=True)
class QualityReport:
    """Quantization error figures over `tokens` predicted positions."""

    tokens: int
    windows: int
    quantization: str
    top1_agreement: float | None
    kl_mean: float | None
    perplexity: float
    perplexity_fp32: float | None

    @property
    def quantization_error_rate(self) -> float | None:
        """Top-1 disagreement with the float32 model (the Prometheus gauge)."""
        return None if self.top1_agreement is None else 1.0 - self.top1_agreement

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures, the error rate included."""
        return {**asdict(self), "quantization_error_rate": self.quantization_error_rate}


def eval_lines(result: QualityReport, model: Path, text: Path, reference: Path | None) -> list[str]:
    """What `model eval` prints: the figures against `reference`, or how to get them when there is none."""
    fp32 = f" (fp32 {result.perplexity_fp32:.4f})" if reference is not None else ""
    lines = [
        f"model        {model} ({result.quantization})",
        f"text         {text}: {result.tokens:,} predicted tokens in {result.windows} windows",
        f"perplexity   {result.perplexity:.4f}{fp32}",
    ]
    if reference is None:
        return [*lines, "reference    none: pass --reference FP32_MODEL for top-1 agreement and KL"]
    assert result.top1_agreement is not None and result.kl_mean is not None
    return [
        *lines,
        f"reference    {reference}",
        f"top-1        {100 * result.top1_agreement:.2f}% agreement with fp32 "
        f"(quantization_error_rate {result.quantization_error_rate:.4f})",
        f"KL           {result.kl_mean:.6f} nats mean KL(fp32 || {result.quantization})",
    ]


def float_logits(weights: FloatWeights, tokens: Sequence[int]) -> np.ndarray:
    """Logits (T, vocab) of every position of `tokens`, an ordinary float32 llama forward pass."""
    cfg = weights.config
    t, hs = len(tokens), cfg.head_size
    if not 1 <= t <= cfg.seq_len:
        raise ConfigError(f"{t} tokens do not fit the float model's context of {cfg.seq_len}")
    table = rope_table(t, hs, weights.rope_theta)
    cos, sin = table[:, None, :, 0], table[:, None, :, 1]
    kv_of_head = np.arange(cfg.n_heads) // (cfg.n_heads // cfg.n_kv_heads)
    mask = np.triu(np.full((t, t), -np.inf, dtype=np.float32), 1)

    def norm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(_EPS)))

    def rope(v: np.ndarray, heads: int) -> np.ndarray:
        pairs = v.reshape(t, heads, hs // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(t, heads, hs)

    x = np.asarray(weights.token_embedding, dtype=np.float32)[np.asarray(tokens)]
    for layer in range(cfg.n_layers):
        h = norm(x, weights.rms_att[layer])
        q = rope(h @ weights.wq[layer].T, cfg.n_heads).transpose(1, 0, 2)  # (heads, T, hs)
        k = rope(h @ weights.wk[layer].T, cfg.n_kv_heads)[:, kv_of_head].transpose(1, 0, 2)
        v = (h @ weights.wv[layer].T).reshape(t, cfg.n_kv_heads, hs)[:, kv_of_head].transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / np.float32(math.sqrt(hs)) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        att = scores / scores.sum(axis=-1, keepdims=True)
        x = x + (att @ v).transpose(1, 0, 2).reshape(t, cfg.dim) @ weights.wo[layer].T
        h = norm(x, weights.rms_ffn[layer])
        gate = h @ weights.w1[layer].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ weights.w3[layer].T)) @ weights.w2[layer].T
    classifier = weights.token_embedding if weights.wcls is None else weights.wcls
    return (norm(x, weights.rms_final) @ np.asarray(classifier, dtype=np.float32).T).astype(np.float32)


def text_tokens(text: str, tokenizer: Tokenizer) -> list[int]:
    """Each non-empty line encoded with BOS, joined."""
    tokens: list[int] = []
    for line in text.splitlines():
        if line.strip():
            tokens.extend(tokenizer.encode(line.strip(), bos=True))
    return tokens


def windows(tokens: Sequence[int], length: int, limit: int | None = None) -> Iterator[list[int]]:
    """Consecutive windows of `length + 1` tokens overlapping by one: inputs and their targets."""
    count = 0
    for start in range(0, len(tokens) - 1, length):
        if limit is not None and count >= limit:
            return
        chunk = list(tokens[start:start + length + 1])
        if len(chunk) >= 2:
            count += 1
            yield chunk


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@dataclass
class QualityAccumulator:
    """Sums over predicted positions; `report()` turns them into a QualityReport."""

    quantization: str
    tokens: int = 0
    windows: int = 0
    nll: float = 0.0
    nll_fp32: float = 0.0
    kl: float = 0.0
    agree: int = 0
    has_reference: bool = False

    def add(self, targets: Sequence[int], quant_logits: np.ndarray, fp32_logits: np.ndarray | None) -> None:
        """One window: `quant_logits[i]` (and `fp32_logits[i]`) predict `targets[i]`."""
        n = len(targets)
        idx = np.arange(n)
        lq = _log_softmax(quant_logits[:n])
        self.nll -= float(lq[idx, targets].sum())
        if fp32_logits is not None:
            self.has_reference = True
            lf = _log_softmax(fp32_logits[:n])
            self.nll_fp32 -= float(lf[idx, targets].sum())
            self.kl += float((np.exp(lf) * (lf - lq)).sum())
            self.agree += int((quant_logits[:n].argmax(axis=-1) == fp32_logits[:n].argmax(axis=-1)).sum())
        self.tokens += n
        self.windows += 1

    def report(self) -> QualityReport:
        """The figures so far (raises when no position was evaluated)."""
        if not self.tokens:
            raise ConfigError("the text gave no tokens to predict; pass a longer text")
        ref = self.has_reference
        return QualityReport(
            tokens=self.tokens, windows=self.windows, quantization=self.quantization,
            top1_agreement=self.agree / self.tokens if ref else None,
            kl_mean=self.kl / self.tokens if ref else None,
            perplexity=math.exp(self.nll / self.tokens),
            perplexity_fp32=math.exp(self.nll_fp32 / self.tokens) if ref else None,
        )


def check_pair(model: TpmModel, weights: FloatWeights) -> None:
    """Refuse a float reference that is not the same network as the quantized model."""
    a, b = model.config, weights.config
    mine = (a.dim, a.hidden_dim, a.n_layers, a.n_heads, a.n_kv_heads, a.vocab_size)
    theirs = (b.dim, b.hidden_dim, b.n_layers, b.n_heads, b.n_kv_heads, b.vocab_size)
    if mine != theirs:
        raise ModelError(f"the reference's shape (dim, hidden, layers, heads, kv heads, vocab) {theirs} is not the "
                         f"model's {mine}; pass the float checkpoint the model was converted from")


def evaluate(model: TpmModel, text: str, weights: FloatWeights | None = None,
             max_windows: int | None = None, fixed_point: bool = False) -> QualityReport:
    """Quantization error of `model` against `weights` (when given) on `text`, in the f32 or
    the fixed-point arithmetic."""
    if model.tokenizer is None:
        raise ModelError("the model has no tokenizer block; re-convert it with its tokenizer")
    if weights is not None:
        check_pair(model, weights)
    reference = Reference(model, fixed_point)
    acc = QualityAccumulator(model.config.quant + ("-fixed" if fixed_point else ""))
    for window in windows(text_tokens(text, model.tokenizer), model.config.seq_len, max_windows):
        inputs, targets = window[:-1], window[1:]
        quant = reference.sequence_logits(inputs)
        acc.add(targets, quant, None if weights is None else float_logits(weights, inputs))
    return acc.report()


def default_reference(model_path: Path) -> Path | None:
    """`NAME-fp32.bin` beside a model `NAME.tpm` or `NAME-int4.tpm` (as the bundled demo ships), if it exists."""
    stem = model_path.stem
    for name in (stem, stem.removesuffix("-int4").removesuffix("-int8")):
        candidate = model_path.with_name(f"{name}-fp32.bin")
        if candidate.is_file():
            return candidate
    return None


# A short held-out story (not from the training grammar's seeds) for `run --check-quality`.
DEFAULT_QUALITY_TEXT = (
    "Once upon a time, there was a little girl named Lily. She had a red ball. She loved her ball very much. "
    "One day, Lily went to the park with her mom. She played with the ball all day. The sun was warm. "
    "But then, the ball was gone! Lily was very sad."
)


@dataclass(frozen=True)
class QualityCheck:
    """What `run --check-quality` found for the logits the board computed on one short text."""

    tokens: list[int]  # the text's tokens; logits of positions 0..n-2 predict tokens 1..n-1
    report: QualityReport
    logits_match_reference: bool
    first_mismatch: int | None  # position where the board's logits first differ from the host reference

    def to_dict(self) -> dict[str, Any]:
        """The summary's `quality` field."""
        return {**self.report.to_dict(), "logits_match_reference": self.logits_match_reference,
                "first_mismatch_position": self.first_mismatch, "text_tokens": len(self.tokens)}


def quality_tokens(model: TpmModel, text: str | None) -> list[int]:
    """The tokens `run --check-quality` sends: BOS, then the text, cut to the model's context."""
    if model.tokenizer is None:
        raise ModelError("the model has no tokenizer block; re-convert it with its tokenizer")
    tokens = model.tokenizer.encode(" ".join((text or DEFAULT_QUALITY_TEXT).split()), bos=True)
    tokens = tokens[:model.config.seq_len]
    if len(tokens) < 2:
        raise ConfigError("the --quality-text gives fewer than 2 tokens; pass a longer text")
    return tokens


def check_device_logits(model: TpmModel, weights: FloatWeights, tokens: Sequence[int],
                        device_logits: np.ndarray, fixed_point: bool = False) -> QualityCheck:
    """Compare the board's logits for `tokens` with the host reference in the board's arithmetic
    (bit for bit) and the float32 model (quantization error); `device_logits` is
    (len(tokens), vocab) float32."""
    host = Reference(model, fixed_point).sequence_logits(list(tokens))
    same = np.all(host.view(np.uint32) == np.asarray(device_logits, dtype=np.float32).view(np.uint32), axis=-1)
    first = None if bool(same.all()) else int(np.argmin(same))
    acc = QualityAccumulator(model.config.quant)
    acc.add(list(tokens[1:]), np.asarray(device_logits, dtype=np.float32), float_logits(weights, tokens))
    return QualityCheck(list(tokens), acc.report(), first is None, first)


def plan_quality_check(model: TpmModel, model_path: Path, reference: Path | None, text: str | None
                       ) -> tuple[tuple[int, ...], Callable[[list[int], list[list[float]], bool], QualityCheck]]:
    """What `run --check-quality` needs before launch: the tokens to send and the check of the
    board's answer. The float model is `reference`, else `NAME-fp32.bin` beside the model."""
    ref_path = reference or default_reference(model_path)
    if ref_path is None:
        raise ConfigError(f"--check-quality needs the float model {model_path.name} came from; pass "
                          "--quality-reference FP32_MODEL (a llama2.c .bin or a GGUF file)")
    from profiler.models.convert import read_float_weights

    weights = read_float_weights(ref_path)
    check_pair(model, weights)
    tokens = quality_tokens(model, text)

    def check(sent: list[int], rows: list[list[float]], fixed_point: bool) -> QualityCheck:
        return check_device_logits(model, weights, sent, np.asarray(rows, dtype=np.float32), fixed_point)

    return tuple(tokens), check
