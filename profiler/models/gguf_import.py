"""GGUF llama-architecture models, read with the `gguf` package (llama.cpp's own reader).

Tensors in F32, F16, BF16 and the simple block formats (Q8_0, Q4_0, Q4_1, Q5_0,
Q5_1) are dequantized to float32; the converter then quantizes them to the
board's format. The tokenizer comes from the metadata (`tokenizer.ggml.*`,
SentencePiece-style `llama` vocabularies), turned into llama2.c's form.

GGUF stores llama's q and k projections with RoPE acting on adjacent pairs
(llama.cpp's converter undoes Hugging Face's half-split permutation), which is
the pairing our forward pass uses, so no permutation is needed here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from profiler.errors import ModelError
from profiler.models.format import ModelConfig
from profiler.models.llama2c import FloatWeights
from profiler.models.tokenizer import BOS, EOS, Tokenizer

GGUF_MAGIC = b"GGUF"
SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")
_RMS_EPS = 1e-5  # the firmware's rmsnorm epsilon
_SPIECE_SPACE = "\u2581"
_TOKEN_TYPE_BYTE = 6


def _field(reader: Any, key: str, name: str, default: Any = ModelError) -> Any:
    field = reader.fields.get(key)
    if field is None:
        if default is ModelError:
            raise ModelError(f"{name} lacks the GGUF metadata field {key}; it is not a complete llama model, "
                             "convert it again with llama.cpp's convert_hf_to_gguf.py")
        return default
    return field.contents()


def read_gguf(path: str | Path) -> tuple[FloatWeights, Tokenizer]:
    """Float32 weights and the tokenizer of a GGUF llama model."""
    try:
        import gguf
    except ImportError as exc:  # a dependency, but say what to do if it went missing
        raise ModelError("reading GGUF needs the `gguf` package; pip install gguf") from exc
    name = str(path)
    try:
        reader = gguf.GGUFReader(path)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ModelError(f"cannot read {name} as GGUF ({exc}); check the file is a complete GGUF model") from exc
    arch = _field(reader, "general.architecture", name)
    if arch != "llama":
        raise ModelError(f"{name} is a GGUF model of architecture {arch!r} (general.architecture); only "
                         "'llama' models (RMSNorm, RoPE, SwiGLU) run on the board")
    n_layers = int(_field(reader, "llama.block_count", name))
    dim = int(_field(reader, "llama.embedding_length", name))
    hidden = int(_field(reader, "llama.feed_forward_length", name))
    n_heads = int(_field(reader, "llama.attention.head_count", name))
    n_kv_heads = int(_field(reader, "llama.attention.head_count_kv", name, n_heads))
    seq_len = int(_field(reader, "llama.context_length", name))
    eps = float(_field(reader, "llama.attention.layer_norm_rms_epsilon", name, _RMS_EPS))
    theta = float(_field(reader, "llama.rope.freq_base", name, 10000.0))
    if not math.isclose(eps, _RMS_EPS, rel_tol=1e-3):
        raise ModelError(f"{name} has llama.attention.layer_norm_rms_epsilon {eps:g}; the firmware's RMSNorm "
                         f"uses {_RMS_EPS:g}, so this model cannot run unchanged; use a model trained with 1e-5")
    scaling = _field(reader, "llama.rope.scaling.type", name, "none")
    if scaling not in ("none", ""):
        raise ModelError(f"{name} uses RoPE scaling {scaling!r} (llama.rope.scaling.type); the converter "
                         "supports plain RoPE only")
    rope_dims = _field(reader, "llama.rope.dimension_count", name, dim // max(n_heads, 1))
    if n_heads and rope_dims != dim // n_heads:
        raise ModelError(f"{name} rotates {rope_dims} of {dim // n_heads} head dimensions "
                         "(llama.rope.dimension_count); only full-head RoPE is supported")

    tensors = {t.name: t for t in reader.tensors}

    def tensor(key: str, shape: tuple[int, ...]) -> np.ndarray:
        t = tensors.get(key)
        if t is None:
            raise ModelError(f"{name} has no tensor {key}; it is not a complete llama model")
        type_name = gguf.GGMLQuantizationType(t.tensor_type).name
        if type_name not in SUPPORTED_TYPES:
            raise ModelError(f"{name}: tensor {key} is {type_name}, which the converter does not read; "
                             f"re-quantize the GGUF to one of {', '.join(SUPPORTED_TYPES)} (llama-quantize)")
        values = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        if values.size != math.prod(shape):
            raise ModelError(f"{name}: tensor {key} has {values.size} values, its metadata implies shape "
                             f"{shape}; the file is inconsistent, convert it again")
        return values.reshape(shape)

    if "token_embd.weight" not in tensors:
        raise ModelError(f"{name} has no tensor token_embd.weight; it is not a complete llama model")
    vocab = int(tensors["token_embd.weight"].n_elements) // max(dim, 1)
    config = ModelConfig(dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len,
                         shared_classifier="output.weight" not in tensors)
    problem = config.problem()
    if problem:
        raise ModelError(f"{name} has a shape the board cannot run: {problem}")
    kv = config.kv_dim
    per_layer = {"wq": ("attn_q", (dim, dim)), "wk": ("attn_k", (kv, dim)), "wv": ("attn_v", (kv, dim)),
                 "wo": ("attn_output", (dim, dim)), "w1": ("ffn_gate", (hidden, dim)),
                 "w2": ("ffn_down", (dim, hidden)), "w3": ("ffn_up", (hidden, dim))}
    mats = {k: np.stack([tensor(f"blk.{i}.{g}.weight", shape) for i in range(n_layers)])
            for k, (g, shape) in per_layer.items()}
    weights = FloatWeights(
        config=config,
        token_embedding=tensor("token_embd.weight", (vocab, dim)),
        rms_att=np.stack([tensor(f"blk.{i}.attn_norm.weight", (dim,)) for i in range(n_layers)]),
        rms_ffn=np.stack([tensor(f"blk.{i}.ffn_norm.weight", (dim,)) for i in range(n_layers)]),
        rms_final=tensor("output_norm.weight", (dim,)),
        wcls=None if config.shared_classifier else tensor("output.weight", (vocab, dim)),
        rope_theta=theta,
        **mats,
    )
    return weights, _tokenizer(reader, name, vocab)


def _tokenizer(reader: Any, name: str, vocab: int) -> Tokenizer:
    model = _field(reader, "tokenizer.ggml.model", name)
    if model != "llama":
        raise ModelError(f"{name} has a {model!r} tokenizer (tokenizer.ggml.model); the converter reads "
                         "SentencePiece-style 'llama' vocabularies only, as llama2.c does")
    tokens = list(_field(reader, "tokenizer.ggml.tokens", name))
    scores = list(_field(reader, "tokenizer.ggml.scores", name, [0.0] * len(tokens)))
    types = list(_field(reader, "tokenizer.ggml.token_type", name, [1] * len(tokens)))
    bos = int(_field(reader, "tokenizer.ggml.bos_token_id", name, BOS))
    eos = int(_field(reader, "tokenizer.ggml.eos_token_id", name, EOS))
    if (bos, eos) != (BOS, EOS):
        raise ModelError(f"{name} has BOS/EOS ids {bos}/{eos} (tokenizer.ggml.bos_token_id/eos_token_id); "
                         f"the board and llama2.c's tokenizer use {BOS}/{EOS}")
    if len(tokens) != vocab or len(scores) != vocab or len(types) != vocab:
        raise ModelError(f"{name} has {len(tokens)} tokens, {len(scores)} scores and {len(types)} token types "
                         f"(tokenizer.ggml.*) for a vocabulary of {vocab}; the file is inconsistent")
    pieces = []
    for text, kind in zip(tokens, types, strict=True):
        piece = str(text)
        if kind != _TOKEN_TYPE_BYTE:
            piece = piece.replace(_SPIECE_SPACE, " ")
        pieces.append(piece.encode("utf-8"))
    f32 = [float(np.float32(s)) for s in scores]
    return Tokenizer(tuple(pieces), tuple(f32), max(len(p) for p in pieces))
