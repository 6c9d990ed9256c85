"""Importing models: llama2.c versioned exports (ak42 v1/v2) and GGUF files written by `gguf`'s writer."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np
import pytest

from profiler.errors import ModelError
from profiler.models.convert import convert, read_float_model, source_format
from profiler.models.format import ModelConfig, TpmModel
from profiler.models.llama2c import FloatWeights, write_checkpoint, write_versioned_checkpoint
from profiler.models.random_model import random_float_weights
from profiler.models.tokenizer import Tokenizer, train_bpe

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "scripts" / "demo_corpus.txt"
# hidden_dim 172: rows of w2 are 172 long, so int8 groups of 32 over the flat tensor straddle rows
SMALL = ModelConfig(dim=32, hidden_dim=172, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=300, seq_len=24)
_MATS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_bpe(CORPUS.read_text(encoding="utf-8"), SMALL.vocab_size)


def _assert_close(a: FloatWeights, b: FloatWeights, atol: float) -> None:
    for name in ("token_embedding", "rms_att", "rms_ffn", "rms_final", *_MATS):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=atol, err_msg=name)
    assert (a.wcls is None) == (b.wcls is None)
    if a.wcls is not None and b.wcls is not None:
        np.testing.assert_allclose(a.wcls, b.wcls, atol=atol)


@pytest.mark.parametrize("shared", [True, False])
def test_llama2c_version1_and_2_exports_read_back(tmp_path: Path, tokenizer: Tokenizer, shared: bool) -> None:
    weights = random_float_weights(replace(SMALL, shared_classifier=shared), seed=4)
    tokenizer.save(tmp_path / "tokenizer.bin")
    write_versioned_checkpoint(weights, tmp_path / "v1.bin", version=1)
    write_versioned_checkpoint(weights, tmp_path / "v2.bin", version=2, group_size=32)
    assert (tmp_path / "v2.bin").read_bytes()[:4] == b"24ka"  # 0x616b3432, little-endian
    assert source_format(tmp_path / "v1.bin") == "llama2c-v1" and source_format(tmp_path / "v2.bin") == "llama2c-v2"
    v1, _ = read_float_model(tmp_path / "v1.bin")
    _assert_close(v1, weights, atol=0)
    assert v1.config == replace(SMALL, shared_classifier=shared)
    v2, tok = read_float_model(tmp_path / "v2.bin")
    assert tok.vocab == tokenizer.vocab
    # Q8_0 over the flat tensor: half a step of the largest group at most
    _assert_close(v2, weights, atol=float(np.abs(weights.w1).max()) / 127 * 0.51 + 1e-7)
    # a w2 group that straddles rows: values 160..191 of the flat tensor span rows 0 and 1
    flat = weights.w2[0].reshape(-1)[160:192]
    step = np.abs(flat).max() / 127
    assert np.all(np.abs(v2.w2[0].reshape(-1)[160:192] - flat) <= step * 0.5 + 1e-7)
    model = convert(tmp_path / "v2.bin", None, tmp_path / "v2.tpm", quant="int4")
    assert model.config.quant == "int4" and TpmModel.read(tmp_path / "v2.tpm").config.shared_classifier == shared


def test_llama2c_version2_group_size_that_does_not_divide_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v2.bin"
    write_versioned_checkpoint(random_float_weights(SMALL, seed=1), path, version=2, group_size=32)
    data = bytearray(path.read_bytes())
    struct.pack_into("<i", data, 37, 48)  # 32*172 values of w2 (and the rest) are not groups of 48
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"in int8 groups of 48, which do not divide"):
        read_float_model(path, CORPUS)


@pytest.mark.parametrize(("damage", "needle"), [
    (lambda d: d[:300], "truncated"),
    (lambda d: d + b"\0" * 8, "bytes after"),
    (lambda d: d[:4] + struct.pack("<i", 3) + d[8:], "version 3"),
])
def test_broken_versioned_exports_name_the_problem(tmp_path: Path, damage, needle: str) -> None:
    path = tmp_path / "v2.bin"
    write_versioned_checkpoint(random_float_weights(SMALL, seed=1), path, version=2, group_size=32)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelError, match=needle) as info:
        read_float_model(path, CORPUS)
    assert "\n" not in str(info.value)


# ---- GGUF ---------------------------------------------------------------------------------

_GGML = gguf.GGMLQuantizationType


def _tensor(writer: gguf.GGUFWriter, name: str, array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> None:
    array = np.ascontiguousarray(array, dtype=np.float32)
    if qtype == _GGML.F32:
        writer.add_tensor(name, array)
    elif qtype == _GGML.F16:
        writer.add_tensor(name, array.astype(np.float16))
    elif qtype == _GGML.Q4_K:  # gguf cannot quantize to K-quants; zero blocks of the right size do
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        writer.add_tensor(name, np.zeros((array.shape[0], array.shape[1] // block * size), np.uint8), raw_dtype=qtype)
    else:
        writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)


def write_gguf(path: Path, weights: FloatWeights, tokenizer: Tokenizer, matrix_type: gguf.GGMLQuantizationType,
               arch: str = "llama", tokenizer_model: str = "llama",
               types: dict[str, gguf.GGMLQuantizationType] | None = None) -> None:
    """A GGUF llama model as llama.cpp's converter lays it out (norms in F32)."""
    cfg = weights.config
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(cfg.seq_len)
    writer.add_embedding_length(cfg.dim)
    writer.add_block_count(cfg.n_layers)
    writer.add_feed_forward_length(cfg.hidden_dim)
    writer.add_head_count(cfg.n_heads)
    writer.add_head_count_kv(cfg.n_kv_heads)
    writer.add_rope_dimension_count(cfg.head_size)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(weights.rope_theta)
    writer.add_tokenizer_model(tokenizer_model)
    specials = {0: 2, 1: 3, 2: 3}
    tokens, kinds = [], []
    for i, piece in enumerate(tokenizer.vocab):
        byte_token = 3 <= i < 259
        tokens.append(piece.decode() if byte_token else piece.decode().replace(" ", "\u2581"))
        kinds.append(6 if byte_token else specials.get(i, 1))
    writer.add_token_list(tokens)
    writer.add_token_scores(list(tokenizer.scores))
    writer.add_token_types(kinds)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    types = types or {}

    def add(name: str, array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> None:
        _tensor(writer, name, array, types.get(name, qtype))

    add("token_embd.weight", weights.token_embedding, matrix_type)
    names = {"wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output", "w1": "ffn_gate",
             "w2": "ffn_down", "w3": "ffn_up"}
    for layer in range(cfg.n_layers):
        add(f"blk.{layer}.attn_norm.weight", weights.rms_att[layer], _GGML.F32)
        add(f"blk.{layer}.ffn_norm.weight", weights.rms_ffn[layer], _GGML.F32)
        for ours, theirs in names.items():
            add(f"blk.{layer}.{theirs}.weight", getattr(weights, ours)[layer], matrix_type)
    add("output_norm.weight", weights.rms_final, _GGML.F32)
    if weights.wcls is not None:
        add("output.weight", weights.wcls, matrix_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


GGUF_SHAPE = replace(SMALL, hidden_dim=160)  # GGML block formats need rows that are multiples of 32


@pytest.mark.parametrize(("qtype", "atol"), [(_GGML.F32, 0.0), (_GGML.F16, 2e-3), (_GGML.Q8_0, 4e-3),
                                             (_GGML.Q4_0, 0.05)])
def test_gguf_tensors_and_tokenizer_read_back(tmp_path: Path, tokenizer: Tokenizer, qtype, atol: float) -> None:
    weights = replace(random_float_weights(replace(GGUF_SHAPE, shared_classifier=False), seed=9), rope_theta=500.0)
    path = tmp_path / "model.gguf"
    write_gguf(path, weights, tokenizer, qtype)
    assert source_format(path) == "gguf"
    back, tok = read_float_model(path)
    assert back.config == replace(GGUF_SHAPE, shared_classifier=False) and back.rope_theta == 500.0
    _assert_close(back, weights, atol=atol)
    assert tok.vocab == tokenizer.vocab and tok.scores == tokenizer.scores
    text = "Once upon a time, Mia saw a snowman \u2603 in the park.\n"
    assert tok.encode(text) == tokenizer.encode(text)
    model = convert(path, None, tmp_path / "model.tpm", seq_len=16)
    assert model.classifier is not None and model.config.seq_len == 16
    np.testing.assert_allclose(model.rope[3, 1], [np.cos(3 * 500.0 ** -0.25), np.sin(3 * 500.0 ** -0.25)],
                               rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"arch": "gpt2"}, "architecture 'gpt2' (general.architecture)"),
    ({"tokenizer_model": "gpt2"}, "'gpt2' tokenizer (tokenizer.ggml.model)"),
    ({"types": {"blk.1.attn_q.weight": _GGML.Q4_K}}, "tensor blk.1.attn_q.weight is Q4_K"),
])
def test_unsupported_gguf_is_one_line_naming_what(tmp_path: Path, tokenizer: Tokenizer, kwargs, needle: str) -> None:
    config = replace(GGUF_SHAPE, dim=256, n_heads=8, n_kv_heads=4)  # Q4_K needs rows of 256
    path = tmp_path / "model.gguf"
    write_gguf(path, random_float_weights(config, seed=1), tokenizer, _GGML.F16, **kwargs)
    with pytest.raises(ModelError, match=needle.replace("(", r"\(").replace(")", r"\)")) as info:
        read_float_model(path)
    assert "\n" not in str(info.value)


def test_legacy_checkpoint_still_needs_its_tokenizer(tmp_path: Path) -> None:
    write_checkpoint(random_float_weights(SMALL, seed=1), tmp_path / "m.bin")
    assert source_format(tmp_path / "m.bin") == "llama2c"
    with pytest.raises(ModelError, match=r"tokenizer\.bin"):
        read_float_model(tmp_path / "m.bin")


@pytest.mark.qemu
@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_gguf_model_runs_on_emulated_stm32_equal_to_reference(tmp_path: Path, tokenizer: Tokenizer,
                                                              firmware_image: object, quant: str) -> None:
    from profiler.api import RunOptions, open_model, plan_run
    from profiler.models.reference import Reference
    from profiler.sinks.jsonl import read_jsonl

    config = ModelConfig(dim=64, hidden_dim=160, n_layers=2, n_heads=8, n_kv_heads=4, vocab_size=300,
                         seq_len=48, shared_classifier=True)
    path = tmp_path / "tiny.gguf"
    write_gguf(path, random_float_weights(config, seed=2), tokenizer, _GGML.Q8_0)
    convert(path, None, tmp_path / "tiny.tpm", quant=quant)
    model, _ = open_model(tmp_path / "tiny.tpm")
    for temperature, seed in ((0.0, 0), (0.9, 77)):
        session, jsonl = plan_run(RunOptions(device="stm32", model=str(tmp_path / "tiny.tpm"), prompt="The dog",
                                             tokens=30, repeat=1, warmup=0, temperature=temperature, seed=seed,
                                             out=tmp_path / f"out{temperature}", emulate=True))
        session.run()
        records = read_jsonl(jsonl)
        device = [r["token_id"] for r in records if r["type"] == "token"]
        assert device == Reference(model).generate(records[0]["prompt_tokens"], 30, temperature, seed)
        assert records[0]["quantization"] == quant
        (rep,) = [r for r in records if r["type"] == "repetition"]
        assert rep["matches_reference"] is True
