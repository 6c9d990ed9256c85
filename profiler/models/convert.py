"""Turn float weights (a llama2.c checkpoint or a GGUF model) into a quantized TPMD model file."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import numpy as np

from profiler.errors import ConfigError, ModelError
from profiler.models.format import LayerWeights, TpmModel, rope_table
from profiler.models.gguf_import import GGUF_MAGIC, read_gguf
from profiler.models.llama2c import VERSIONED_MAGIC, FloatWeights, read_checkpoint
from profiler.models.quantize import quantize_rows
from profiler.models.tokenizer import Tokenizer

SUPPORTED_QUANT = ("int8", "int4")


def quantize_weights(weights: FloatWeights, group_size: int = 32,
                     seq_len: int | None = None,
                     tokenizer: Tokenizer | None = None, quant: str = "int8") -> TpmModel:
    """Quantize every matrix to int8 or int4 groups and build the RoPE table for `seq_len`."""
    cfg = weights.config
    if quant not in SUPPORTED_QUANT:
        raise ConfigError(f"quantization {quant!r} is not supported; use `--quant int8` or `--quant int4`")
    bits = 8 if quant == "int8" else 4
    if seq_len is not None and not 1 <= seq_len <= cfg.seq_len:
        raise ConfigError(f"--seq-len {seq_len} is outside 1..{cfg.seq_len}, the context the "
                          "checkpoint was trained for; pick a value in that range")
    if not 1 <= group_size <= 0xFFFF:
        raise ConfigError(f"group size {group_size} must be between 1 and 65535; 32 is a "
                          "good default")
    if tokenizer is not None and tokenizer.vocab_size != cfg.vocab_size:
        raise ModelError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model's "
                         f"vocabulary is {cfg.vocab_size}; pass the tokenizer.bin that "
                         "belongs to this checkpoint with --tokenizer")
    cfg = replace(cfg, group_size=group_size, seq_len=seq_len or cfg.seq_len,
                  shared_classifier=weights.wcls is None, quant=quant)

    layers = tuple(
        LayerWeights(*(quantize_rows(np.asarray(m[layer], dtype=np.float32), group_size, bits)
                       for m in (weights.wq, weights.wk, weights.wv, weights.wo,
                                 weights.w1, weights.w2, weights.w3)))
        for layer in range(cfg.n_layers))
    f32 = np.float32
    return TpmModel(
        config=cfg,
        rope=rope_table(cfg.seq_len, cfg.head_size, weights.rope_theta),
        rms_att=np.ascontiguousarray(weights.rms_att, dtype=f32),
        rms_ffn=np.ascontiguousarray(weights.rms_ffn, dtype=f32),
        rms_final=np.ascontiguousarray(weights.rms_final, dtype=f32),
        embedding=quantize_rows(np.asarray(weights.token_embedding, dtype=f32), group_size, bits),
        layers=layers,
        classifier=None if weights.wcls is None
        else quantize_rows(np.asarray(weights.wcls, dtype=f32), group_size, bits),
        tokenizer=tokenizer,
    )


def source_format(path: str | Path) -> str:
    """`gguf`, `llama2c-v1`, `llama2c-v2` or `llama2c` (legacy) from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}; check the path") from exc
    if head[:4] == GGUF_MAGIC:
        return "gguf"
    if len(head) == 8 and struct.unpack("<Ii", head)[0] == VERSIONED_MAGIC:
        return f"llama2c-v{struct.unpack('<Ii', head)[1]}"
    return "llama2c"


def read_float_weights(path: str | Path) -> FloatWeights:
    """Float weights of a llama2.c checkpoint (any version) or a GGUF model, without a tokenizer."""
    return read_gguf(path)[0] if source_format(path) == "gguf" else read_checkpoint(path)


def read_float_model(path: str | Path, tokenizer_path: str | Path | None = None) -> tuple[FloatWeights, Tokenizer]:
    """Float weights and tokenizer of a llama2.c checkpoint (any version) or a GGUF model.

    A GGUF file carries its tokenizer; a llama2.c checkpoint needs `tokenizer_path`, or
    `tokenizer.bin` beside it.
    """
    if source_format(path) == "gguf":
        weights, tokenizer = read_gguf(path)
        if tokenizer_path is not None:
            tokenizer = Tokenizer.load(tokenizer_path, weights.config.vocab_size)
        return weights, tokenizer
    weights = read_checkpoint(path)
    if tokenizer_path is None:
        tokenizer_path = Path(path).parent / "tokenizer.bin"
        if not tokenizer_path.is_file():
            raise ModelError(f"no tokenizer given and none at {tokenizer_path}; pass the "
                             "checkpoint's tokenizer.bin with --tokenizer")
    return weights, Tokenizer.load(tokenizer_path, weights.config.vocab_size)


def convert(checkpoint_path: str | Path, tokenizer_path: str | Path | None,
            out_path: str | Path, quant: str = "int8", group_size: int = 32,
            seq_len: int | None = None) -> TpmModel:
    """Convert a llama2.c checkpoint (legacy, version 1 or 2, + tokenizer.bin) or a GGUF llama
    model to a TPMD file at `out_path`.

    Without `tokenizer_path`, a checkpoint uses `tokenizer.bin` beside it and a GGUF file its own.
    """
    if quant not in SUPPORTED_QUANT:
        raise ModelError(f"quantization {quant!r} is not supported; the firmware runs int8 and int4, "
                         "use `--quant int8` or `--quant int4`")
    weights, tokenizer = read_float_model(checkpoint_path, tokenizer_path)
    model = quantize_weights(weights, group_size, seq_len, tokenizer, quant)
    model.write(out_path)
    return model
