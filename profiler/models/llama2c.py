"""llama2.c legacy fp32 checkpoints (`export.py --version 0`, the `.bin` of run.c).

Layout: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
seq_len; a negative vocab_size means the classifier is NOT shared), then float32
arrays, each weight kind for all layers at once: token embedding, rms_att, wq, wk,
wv, wo, rms_ffn, w1, w2, w3, rms_final, two RoPE tables we skip, and the
classifier when it is not shared.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from profiler.errors import ModelError
from profiler.models.format import ModelConfig

_HEADER = struct.Struct("<7i")
_VERSIONED_MAGIC = 0x616B3432  # "ak42": llama2.c's newer export versions 1 and 2
_REEXPORT_HINT = "re-export it with llama2.c's `export.py --version 0`"


@dataclass(frozen=True, eq=False)
class FloatWeights:
    """Float32 weights of a llama-style model; matrices are (out_features, in_features).

    `config.group_size` is meaningless here; it is set when the weights are quantized.
    """

    config: ModelConfig
    token_embedding: np.ndarray  # (vocab_size, dim)
    rms_att: np.ndarray  # (n_layers, dim)
    wq: np.ndarray  # (n_layers, dim, dim)
    wk: np.ndarray  # (n_layers, kv_dim, dim)
    wv: np.ndarray  # (n_layers, kv_dim, dim)
    wo: np.ndarray  # (n_layers, dim, dim)
    rms_ffn: np.ndarray  # (n_layers, dim)
    w1: np.ndarray  # (n_layers, hidden_dim, dim)
    w2: np.ndarray  # (n_layers, dim, hidden_dim)
    w3: np.ndarray  # (n_layers, hidden_dim, dim)
    rms_final: np.ndarray  # (dim,)
    wcls: np.ndarray | None  # (vocab_size, dim), None when shared with the embedding


def _shapes(cfg: ModelConfig) -> list[tuple[str, tuple[int, ...]]]:
    d, h, kv, n = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.n_layers
    rope = cfg.seq_len * cfg.head_size // 2
    shapes = [
        ("token_embedding", (cfg.vocab_size, d)), ("rms_att", (n, d)), ("wq", (n, d, d)),
        ("wk", (n, kv, d)), ("wv", (n, kv, d)), ("wo", (n, d, d)), ("rms_ffn", (n, d)),
        ("w1", (n, h, d)), ("w2", (n, d, h)), ("w3", (n, h, d)), ("rms_final", (d,)),
        ("", (rope,)), ("", (rope,)),  # freq_cis_real, freq_cis_imag: we build our own
    ]
    if not cfg.shared_classifier:
        shapes.append(("wcls", (cfg.vocab_size, d)))
    return shapes


def checkpoint_bytes(cfg: ModelConfig) -> int:
    """Size of a legacy checkpoint with this shape."""
    counts = (int(np.prod(shape)) for _, shape in _shapes(cfg))
    return _HEADER.size + 4 * sum(counts)


def read_checkpoint(path: str | Path) -> FloatWeights:
    """Read a legacy fp32 checkpoint, checking its size against its header."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read checkpoint {path}: {exc.strerror}; check the "
                         "path") from exc
    if len(data) < _HEADER.size:
        raise ModelError(f"{path} is {len(data)} bytes, too short for a llama2.c checkpoint "
                         "header (28 bytes); pass a llama2.c `.bin` checkpoint")
    if struct.unpack_from("<I", data)[0] == _VERSIONED_MAGIC:
        raise ModelError(f"{path} is a llama2.c version-1/2 export; only legacy fp32 "
                         f"checkpoints are read, {_REEXPORT_HINT}")
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = _HEADER.unpack_from(data)
    cfg = ModelConfig(dim, hidden, n_layers, n_heads, n_kv_heads, abs(vocab), seq_len,
                      shared_classifier=vocab > 0)
    problem = cfg.problem()
    if problem:
        raise ModelError(f"{path} does not look like a llama2.c legacy checkpoint (header "
                         f"{dim=} {hidden=} {n_layers=} {n_heads=} {n_kv_heads=} {vocab=} "
                         f"{seq_len=}: {problem}); pass a llama2.c `.bin` checkpoint")
    expected = checkpoint_bytes(cfg)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        classifier = "shared" if cfg.shared_classifier else "separate"
        raise ModelError(f"{path} is {len(data)} bytes but its header (dim {dim}, hidden "
                         f"{hidden}, {n_layers} layers, {n_heads}/{n_kv_heads} heads, vocab "
                         f"{abs(vocab)}, seq_len {seq_len}, {classifier} classifier) needs "
                         f"{expected}: the file is {what}; download it again or "
                         f"{_REEXPORT_HINT}")
    arrays: dict[str, np.ndarray | None] = {"wcls": None}
    offset = _HEADER.size
    for name, shape in _shapes(cfg):
        count = int(np.prod(shape))
        if name:
            arrays[name] = np.frombuffer(data, dtype="<f4", count=count,
                                         offset=offset).reshape(shape)
        offset += 4 * count
    return FloatWeights(config=cfg, **arrays)  # type: ignore[arg-type]


def write_checkpoint(weights: FloatWeights, path: str | Path) -> None:
    """Write `weights` as a legacy fp32 checkpoint (the RoPE tables as llama2.c does)."""
    cfg = weights.config
    shared = weights.wcls is None
    if shared != cfg.shared_classifier:
        weights = replace(weights, config=replace(cfg, shared_classifier=shared))
        cfg = weights.config
    vocab = cfg.vocab_size if shared else -cfg.vocab_size
    head = _HEADER.pack(cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads,
                        vocab, cfg.seq_len)
    freqs = 1.0 / 10000.0 ** (np.arange(0, cfg.head_size, 2) / cfg.head_size)
    angles = np.outer(np.arange(cfg.seq_len), freqs)
    rope = iter((np.cos(angles), np.sin(angles)))
    parts = [head]
    for name, shape in _shapes(cfg):
        array = getattr(weights, name) if name else next(rope).ravel()
        if array.shape != shape:
            raise ValueError(f"{name or 'rope'} has shape {array.shape}, expected {shape}")
        parts.append(np.ascontiguousarray(array, dtype="<f4").tobytes())
    Path(path).write_bytes(b"".join(parts))
