"""llama2.c checkpoints: legacy fp32 (`export.py --version 0`, the `.bin` of run.c) and the
versioned `ak42` exports, version 1 (fp32) and version 2 (int8, the `.bin` of runq.c).

Legacy layout: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
seq_len; a negative vocab_size means the classifier is NOT shared), then float32
arrays, each weight kind for all layers at once: token embedding, rms_att, wq, wk,
wv, wo, rms_ffn, w1, w2, w3, rms_final, two RoPE tables we skip, and the
classifier when it is not shared.

Versioned layout: a 256-byte header `u32 magic 0x616b3432 ("ak42")`, `i32 version`,
the seven int32 above (vocab_size positive), `u8 shared_classifier`, then in
version 2 an unaligned `i32 group_size` at offset 37, zero padding. Version 1 then
holds float32 rms_att, rms_ffn, rms_final, embedding, wq..w3 (all layers each),
classifier if not shared. Version 2 holds the float32 norms, then each matrix
(embedding, wq of every layer, ..., w3, classifier) as `int8 q[numel]` followed by
`f32 scale[numel / group_size]`, groups running over the flattened matrix (Q8_0).
A group may straddle two rows when group_size does not divide the row length;
reading dequantizes the flat tensor, so that case comes out right (runq.c itself
gets it wrong), and a tensor whose size is not a multiple of group_size is refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from profiler.errors import ModelError
from profiler.models.format import ModelConfig

_HEADER = struct.Struct("<7i")
VERSIONED_MAGIC = 0x616B3432  # "ak42": llama2.c's newer export versions 1 and 2
_VERSIONED_HEADER_SIZE = 256
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
    rope_theta: float = 10000.0  # RoPE base: angle of pair i at pos is pos * theta^(-2i/head_size)


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
    if struct.unpack_from("<I", data)[0] == VERSIONED_MAGIC:
        return _read_versioned(data, str(path))
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


# ---- versioned (ak42) exports -----------------------------------------------------------

_MATRICES = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


def _versioned_config(data: bytes, name: str) -> tuple[int, ModelConfig, int]:
    if len(data) < _VERSIONED_HEADER_SIZE:
        raise ModelError(f"{name} has the llama2.c `ak42` magic but is {len(data)} bytes, shorter than "
                         f"its 256-byte header; download or export it again")
    version = struct.unpack_from("<i", data, 4)[0]
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = _HEADER.unpack_from(data, 8)
    shared = data[36]
    group_size = struct.unpack_from("<i", data, 37)[0] if version == 2 else 0
    if version not in (1, 2):
        raise ModelError(f"{name} is a llama2.c export of version {version}; versions 0 (legacy fp32), "
                         f"1 (fp32) and 2 (int8) are read, re-export it with `export.py --version 2`")
    cfg = ModelConfig(dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len, shared_classifier=bool(shared))
    problem = cfg.problem() or (None if shared in (0, 1) else f"shared_classifier byte is {shared}")
    if problem:
        raise ModelError(f"{name} has a broken llama2.c version-{version} header ({problem}); "
                         "export it again")
    return version, cfg, group_size


def _read_versioned(data: bytes, name: str) -> FloatWeights:
    version, cfg, group_size = _versioned_config(data, name)
    d, h, kv, n, v = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.n_layers, cfg.vocab_size
    shapes = {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d), "w1": (h, d), "w2": (d, h), "w3": (h, d)}
    offset = _VERSIONED_HEADER_SIZE

    def take_f32(count: int) -> np.ndarray:
        nonlocal offset
        if offset + 4 * count > len(data):
            raise EOFError
        out = np.frombuffer(data, dtype="<f4", count=count, offset=offset).astype(np.float32)
        offset += 4 * count
        return out

    def take_q80(rows: int, cols: int) -> np.ndarray:
        nonlocal offset
        numel = rows * cols
        if numel % group_size:
            raise ModelError(f"{name} stores a {rows}x{cols} matrix in int8 groups of {group_size}, which do "
                             f"not divide its {numel} values; the file is malformed, re-export it with a "
                             "group size that divides every matrix (`export.py --version 2`)")
        if offset + numel + 4 * (numel // group_size) > len(data):
            raise EOFError
        q = np.frombuffer(data, dtype=np.int8, count=numel, offset=offset).astype(np.float32)
        offset += numel
        scales = take_f32(numel // group_size)
        return (q.reshape(-1, group_size) * scales[:, None]).reshape(rows, cols)

    try:
        rms_att, rms_ffn, rms_final = take_f32(n * d).reshape(n, d), take_f32(n * d).reshape(n, d), take_f32(d)
        if version == 1:
            emb = take_f32(v * d).reshape(v, d)
            mats = {k: take_f32(n * r * c).reshape(n, r, c) for k, (r, c) in shapes.items()}
            wcls = None if cfg.shared_classifier else take_f32(v * d).reshape(v, d)
        else:
            if group_size < 1:
                raise ModelError(f"{name} is a llama2.c version-2 export with group size {group_size}; "
                                 "export it again")
            emb = take_q80(v, d)
            mats = {k: np.stack([take_q80(r, c) for _ in range(n)]) for k, (r, c) in shapes.items()}
            wcls = None if cfg.shared_classifier else take_q80(v, d)
    except EOFError:
        raise ModelError(f"{name} is {len(data)} bytes, too short for the llama2.c version-{version} model its "
                         f"header describes (dim {d}, hidden {h}, {n} layers, vocab {v}); the file is "
                         "truncated, download or export it again") from None
    if offset != len(data):
        raise ModelError(f"{name} has {len(data) - offset} bytes after the llama2.c version-{version} model its "
                         "header describes; the file is damaged, export it again")
    return FloatWeights(config=cfg, token_embedding=emb, rms_att=rms_att, rms_ffn=rms_ffn, rms_final=rms_final,
                        wcls=wcls, **mats)  # type: ignore[arg-type]


def write_versioned_checkpoint(weights: FloatWeights, path: str | Path, version: int = 2,
                               group_size: int = 64) -> None:
    """Write `weights` as llama2.c's `export.py --version 1|2` would (Q8_0 with round half to even,
    as torch.round); `group_size` must divide the size of every matrix, as export.py asserts."""
    cfg = weights.config
    shared = weights.wcls is None
    head = struct.pack("<Ii", VERSIONED_MAGIC, version)
    head += _HEADER.pack(cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size,
                         cfg.seq_len)
    head += struct.pack("<B", int(shared))
    if version == 2:
        head += struct.pack("<i", group_size)
    parts = [head + bytes(_VERSIONED_HEADER_SIZE - len(head))]
    f32 = [weights.rms_att, weights.rms_ffn, weights.rms_final]
    matrices = [weights.token_embedding] + [getattr(weights, k)[layer] for k in _MATRICES
                                            for layer in range(cfg.n_layers)]
    if not shared:
        matrices.append(weights.wcls)
    if version == 1:
        f32 += matrices
        matrices = []
    parts += [np.ascontiguousarray(a, dtype="<f4").tobytes() for a in f32]
    for m in matrices:
        flat = np.asarray(m, dtype=np.float32).reshape(-1, group_size)
        scale = np.abs(flat).max(axis=1) / np.float32(127.0)
        q = np.round(flat / np.where(scale == 0, np.float32(1), scale)[:, None]).astype(np.int8)
        parts += [q.tobytes(), scale.astype("<f4").tobytes()]
    Path(path).write_bytes(b"".join(parts))
