"""Models with random weights: the bundled demo and test fixtures.

Random numbers come from splitmix64 over a counter, turned into uniform values
with exact arithmetic only, so a seed gives the same bytes on every machine and
numpy version (numpy's own generators and transcendental functions promise neither).
"""

from __future__ import annotations

import math

import numpy as np

from profiler.models.convert import quantize_weights
from profiler.models.format import ModelConfig, TpmModel
from profiler.models.llama2c import FloatWeights
from profiler.models.tokenizer import Tokenizer

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# A small embedding next to the layers' unit-variance outputs keeps a token from simply
# predicting itself through a tied classifier; the final norm's gain then spreads the
# logits (std about 0.05 * 5 * sqrt(dim)) so greedy and sampled runs both vary.
_EMBEDDING_STD = 0.05
_FINAL_GAIN = 5.0


class _Uniform:
    """A counter-based stream of uniform values in (-1, 1)."""

    def __init__(self, seed: int) -> None:
        self.base = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        self.position = 0

    def draw(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        """Uniform float32 values with standard deviation `std`."""
        n = math.prod(shape)
        counter = np.arange(self.position + 1, self.position + n + 1, dtype=np.uint64)
        self.position += n
        z = self.base + counter * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        top24 = (z >> np.uint64(40)).astype(np.float64)
        unit = (top24 + 0.5) / float(1 << 23) - 1.0  # exact: 24-bit integers and powers of 2
        return (unit * (std * math.sqrt(3.0))).astype(np.float32).reshape(shape)


def random_float_weights(config: ModelConfig, seed: int) -> FloatWeights:
    """Float weights scaled like a usual init: every matrix has unit-variance outputs."""
    rng = _Uniform(seed)
    d, h, kv, n = config.dim, config.hidden_dim, config.kv_dim, config.n_layers

    def norm_weights(*shape: int, gain: float = 1.0) -> np.ndarray:
        return ((rng.draw(shape, 0.1) + np.float32(1.0)) * np.float32(gain)).astype(np.float32)

    return FloatWeights(
        config=config,
        token_embedding=rng.draw((config.vocab_size, d), _EMBEDDING_STD),
        rms_att=norm_weights(n, d),
        wq=rng.draw((n, d, d), 1.0 / math.sqrt(d)),
        wk=rng.draw((n, kv, d), 1.0 / math.sqrt(d)),
        wv=rng.draw((n, kv, d), 1.0 / math.sqrt(d)),
        wo=rng.draw((n, d, d), 1.0 / math.sqrt(d)),
        rms_ffn=norm_weights(n, d),
        w1=rng.draw((n, h, d), 1.0 / math.sqrt(d)),
        w2=rng.draw((n, d, h), 1.0 / math.sqrt(h)),
        w3=rng.draw((n, h, d), 1.0 / math.sqrt(d)),
        rms_final=norm_weights(d, gain=_FINAL_GAIN),
        wcls=None if config.shared_classifier
        else rng.draw((config.vocab_size, d), _EMBEDDING_STD),
    )


def make_random_model(config: ModelConfig, seed: int,
                      tokenizer: Tokenizer | None = None) -> TpmModel:
    """A quantized model with random weights of shape `config` (deterministic in `seed`)."""
    return quantize_weights(random_float_weights(config, seed), config.group_size,
                            config.seq_len, tokenizer)
