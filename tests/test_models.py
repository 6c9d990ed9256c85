"""Model files, conversion, tokenizer, the reference forward pass and the fit arithmetic."""

from __future__ import annotations

import hashlib
import math
import struct
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from profiler.errors import ConfigError, FitError, ModelError
from profiler.models import DEMO_MODEL_PATH
from profiler.models.convert import convert, quantize_weights
from profiler.models.fit import arena_bytes, check_fit, kv_cache_bytes
from profiler.models.format import (
    ModelConfig,
    TpmModel,
    image_crc32,
    image_sha256,
    pack_int4,
    read_header,
    unpack_int4,
)
from profiler.models.llama2c import write_checkpoint
from profiler.models.quantize import quantize_rows
from profiler.models.random_model import make_random_model, random_float_weights
from profiler.models.reference import Reference, generate, tp_exp
from profiler.models.tokenizer import Tokenizer, train_bpe

ROOT = Path(__file__).resolve().parent.parent
DEMO = DEMO_MODEL_PATH
CORPUS = ROOT / "scripts" / "demo_corpus.txt"

STORIES_SHA256_16 = "8345efa60c5e4efd"  # of the first 200 training stories; a change means the corpus changed
# hidden_dim 172 with group_size 32: every w2 row ends in a 12-value group
SMALL = ModelConfig(dim=32, hidden_dim=172, n_layers=2, n_heads=4, n_kv_heads=2,
                    vocab_size=300, seq_len=24, group_size=32, shared_classifier=True)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_bpe(CORPUS.read_text(encoding="utf-8"), SMALL.vocab_size)


@pytest.fixture(scope="module")
def demo() -> TpmModel:
    return TpmModel.read(DEMO)


def test_write_read_roundtrip(tmp_path: Path, tokenizer: Tokenizer) -> None:
    model = make_random_model(SMALL, seed=3, tokenizer=tokenizer)
    path = tmp_path / "m.tpm"
    model.write(path)
    back = TpmModel.read(path)
    assert back.config == SMALL
    assert back.to_bytes() == path.read_bytes()
    np.testing.assert_array_equal(back.layers[1].w2.q, model.layers[1].w2.q)
    np.testing.assert_array_equal(back.layers[1].w2.scales, model.layers[1].w2.scales)
    np.testing.assert_array_equal(back.rope, model.rope)
    assert back.tokenizer is not None and back.tokenizer.vocab == tokenizer.vocab
    header = read_header(path)
    assert header.config == SMALL and header.file_bytes == path.stat().st_size
    assert image_crc32(path) == zlib.crc32(path.read_bytes())
    assert len(image_sha256(path)) == 64


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x40]) + data[offset + 1:]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: _flip(d, 12), "header CRC"),
    (lambda d: _flip(d, len(d) // 2), "payload CRC"),
    (lambda d: d[:-10], "truncated"),
    (lambda d: b"GGUF" + d[4:], "not a tiny-profiler model"),
    (lambda d: d[:30], "not a tiny-profiler model"),
])
def test_damaged_files_raise_one_line_model_error(tmp_path: Path, damage, message) -> None:
    good = make_random_model(SMALL, seed=1).to_bytes()
    path = tmp_path / "bad.tpm"
    path.write_bytes(damage(good))
    with pytest.raises(ModelError, match=message) as info:
        TpmModel.read(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text and "`tiny-profiler model convert`" in text


@pytest.mark.parametrize("shared", [True, False])
def test_llama2c_checkpoint_converts(tmp_path: Path, tokenizer: Tokenizer,
                                     shared: bool) -> None:
    weights = random_float_weights(replace(SMALL, shared_classifier=shared), seed=7)
    checkpoint = tmp_path / "model.bin"
    write_checkpoint(weights, checkpoint)
    tokenizer.save(tmp_path / "tokenizer.bin")  # found beside the checkpoint
    convert(checkpoint, None, tmp_path / "model.tpm", seq_len=16)
    model = TpmModel.read(tmp_path / "model.tpm")
    assert model.config == replace(SMALL, seq_len=16, shared_classifier=shared)
    assert (model.classifier is None) == shared
    pairs = [(model.embedding, weights.token_embedding), (model.layers[1].w2, weights.w2[1]),
             (model.layers[0].wk, weights.wk[0])]
    if model.classifier is not None:
        assert weights.wcls is not None
        pairs.append((model.classifier, weights.wcls))
    for tensor, original in pairs:
        # rounding to the nearest step leaves at most half a step per value
        step = np.repeat(tensor.scales, tensor.group_size, axis=1)[:, :tensor.cols]
        assert np.all(np.abs(tensor.dequantize() - original) <= step * 0.5001)
    assert model.tokenizer is not None and model.tokenizer.vocab == tokenizer.vocab


def test_bad_checkpoints_and_options(tmp_path: Path, tokenizer: Tokenizer) -> None:
    checkpoint = tmp_path / "model.bin"
    write_checkpoint(random_float_weights(SMALL, seed=1), checkpoint)
    with pytest.raises(ModelError, match=r"tokenizer\.bin"):
        convert(checkpoint, None, tmp_path / "m.tpm")
    tokenizer.save(tmp_path / "tokenizer.bin")
    with pytest.raises(ModelError, match="firmware runs int8 and int4"):
        convert(checkpoint, None, tmp_path / "m.tpm", quant="int2")
    checkpoint.write_bytes(checkpoint.read_bytes()[:-4])
    with pytest.raises(ModelError, match="truncated"):
        convert(checkpoint, None, tmp_path / "m.tpm")


def test_quantize_rows_groups() -> None:
    w = np.zeros((3, 70), dtype=np.float32)
    w[1] = np.arange(70, dtype=np.float32) - 35
    w[2, 64:] = [0.5, -1.0, 0.25, 0.0, 1.0, -0.5]  # only the short last group is non-zero
    t = quantize_rows(w, 32)
    assert t.scales.shape == (3, 3)
    assert np.all(t.scales[0] == 0) and np.all(t.q[0] == 0)
    assert t.scales[2, 2] == np.float32(1.0) / np.float32(127.0)
    np.testing.assert_array_equal(t.q[2, 64:], [64, -127, 32, 0, 127, -64])
    assert np.abs(t.q).max() == 127


def test_tokenizer_roundtrip(tmp_path: Path, demo: TpmModel) -> None:
    tokenizer = demo.tokenizer
    assert tokenizer is not None
    text = "Once upon a time, Mia saw a snowman \u2603 in the park."
    ids = tokenizer.encode(text)
    assert ids[0] == 1 and tokenizer.encode("") == [1]
    assert [b + 3 for b in "\u2603".encode()] == [i for i in ids if 3 <= i < 259]
    assert len(ids) < 0.7 * len(text)  # merges happened
    assert tokenizer.decode(ids[1:]) == text
    tokenizer.save(tmp_path / "tokenizer.bin")
    loaded = Tokenizer.load(tmp_path / "tokenizer.bin")
    assert loaded.encode(text) == ids
    assert Tokenizer.from_block(tokenizer.to_block()).vocab == tokenizer.vocab


def _tp_exp_scalar(v: float) -> np.float32:
    """The spec's tp_exp one float32 operation at a time."""
    f = np.float32
    n = np.floor(f(v) * f(1.44269504) + f(0.5))
    r = f(v) - n * f(0.693145751953125)
    r = r - n * f(1.428606765330187e-06)
    p = f(1.38888889e-3)
    for c in (8.33333333e-3, 4.16666667e-2, 1.66666667e-1, 0.5, 1.0, 1.0):
        p = p * r + f(c)
    return f(p * f(2.0 ** int(n)))


def test_tp_exp_is_the_spec_and_close_to_exp() -> None:
    x = np.linspace(-80, 80, 40001, dtype=np.float32)
    y = tp_exp(x)
    expected = np.array([math.exp(float(v)) for v in x])
    # the spec's degree-6 polynomial alone is off by 1.6e-7; float32 rounding adds the rest
    assert np.max(np.abs(y - expected) / expected) < 2.5e-7
    for v in x[::997]:
        assert y[np.searchsorted(x, v)] == _tp_exp_scalar(float(v))
    assert tp_exp(np.float32(-80.01)) == 0 and tp_exp(np.float32(200)) == tp_exp(80.0)


def test_generate_is_deterministic(demo: TpmModel) -> None:
    assert demo.tokenizer is not None
    prompt = demo.tokenizer.encode("Once upon a time")
    greedy = generate(demo, prompt, 40)
    assert greedy == generate(demo, prompt, 40) and len(greedy) == 40
    sampled = generate(demo, prompt, 40, temperature=0.8, seed=42)
    assert sampled == generate(demo, prompt, 40, temperature=0.8, seed=42)
    assert sampled != generate(demo, prompt, 40, temperature=0.8, seed=43)
    # decode tokens see the cache the prompt left: one RUN equals prefill + steps
    ref = Reference(demo)
    for pos, token in enumerate(prompt):
        logits = ref.forward(token, pos)
    assert logits is not None and int(np.argmax(logits)) == greedy[0]
    with pytest.raises(ConfigError, match="context"):
        generate(demo, prompt, demo.config.seq_len)


def test_arena_bytes_of_the_demo(demo: TpmModel) -> None:
    # x, xb, xb2 3*256 + hb, hb2 2*688 + q 256 + att 4*8*64 + logits 4*512
    # + xq.q 172 -> 176 + xq.scale 4*6 + qq.q 64 + qq.scale 4*8
    # + int8 key/value caches 2 * 5*64*32 + their scales 2 * 4*5*64*4 (one per position and kv head)
    assert arena_bytes(demo.config) == 768 + 1376 + 256 + 2048 + 2048 + 176 + 24 + 64 + 32 + 30720
    assert kv_cache_bytes(demo.config) == 2 * 10240 + 2 * 5120
    assert check_fit(DEMO.stat().st_size, demo.config, 512 * 1024, 48 * 1024).arena_bytes \
        == 37512
    with pytest.raises(FitError, match=r"needs 36\.6 KB of RAM .* stm32f405 arena has 32\.0 KB"):
        check_fit(DEMO.stat().st_size, demo.config, 512 * 1024, 32 * 1024, board="stm32f405")


def test_demo_models_are_the_conversion_of_the_committed_checkpoint(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_model.py"),
                    "--out-dir", str(tmp_path)], check=True, capture_output=True)
    for name in ("demo.tpm", "demo-int4.tpm"):
        assert (tmp_path / name).read_bytes() == (DEMO.parent / name).read_bytes(), "rerun scripts/make_demo_model.py"
    assert DEMO.stat().st_size < 500 * 1024 and (DEMO.parent / "demo-fp32.bin").stat().st_size < 1200 * 1024
    assert read_header(DEMO.parent / "demo-int4.tpm").quant == "int4"


def test_story_corpus_is_the_same_on_every_machine() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from story_corpus import stories

    text = "\n".join(stories(200, 1))
    assert stories(200, 1) == stories(200, 1) and text.startswith("One day, a shy boy named Ben went to the forest.")
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == STORIES_SHA256_16


def test_int4_packing_and_quantizer() -> None:
    q = np.array([[-8, 7, -1, 0, 3], [1, -2, 5, -7, 6]], dtype=np.int8)  # odd length: a lone last nibble
    packed = pack_int4(q)
    assert packed == bytes([0x78, 0x0F, 0x03, 0xE1, 0x95, 0x06])
    np.testing.assert_array_equal(unpack_int4(packed, 2, 5), q)
    w = np.zeros((2, 40), dtype=np.float32)
    w[0, :5] = [0.7, -0.35, 0.05, 0.0, -0.7]
    w[1, 32:] = 1.0  # only the short last group is non-zero
    t = quantize_rows(w, 32, bits=4)
    assert t.bits == 4 and t.scales[0, 0] == np.float32(0.7) / np.float32(7.0)
    np.testing.assert_array_equal(t.q[0, :5], [7, -4, 1, 0, -7])  # -3.5 rounds away from zero
    assert np.all(t.q[1, 32:] == 7) and t.scales[1, 0] == 0 and np.abs(t.q).max() == 7


def test_int4_model_roundtrip_and_size(tmp_path: Path, tokenizer: Tokenizer) -> None:
    odd = replace(SMALL, hidden_dim=171, group_size=24)  # odd rows of w2, groups across bytes
    weights = random_float_weights(odd, seed=5)
    int8 = quantize_weights(weights, 24, tokenizer=tokenizer)
    int4 = quantize_weights(weights, 24, tokenizer=tokenizer, quant="int4")
    int4.write(tmp_path / "m4.tpm")
    back = TpmModel.read(tmp_path / "m4.tpm")
    assert back.config == replace(odd, quant="int4") and read_header(tmp_path / "m4.tpm").quant == "int4"
    for a, b in zip(back.layers[1].tensors(), int4.layers[1].tensors(), strict=True):
        np.testing.assert_array_equal(a.q, b.q)
        assert a.bits == 4
    assert back.to_bytes() == (tmp_path / "m4.tpm").read_bytes()
    assert len(int4.to_bytes()) < 0.7 * len(int8.to_bytes())  # scales and tokenizer stay the same size
    step = np.repeat(int4.layers[0].w1.scales, 24, axis=1)[:, :odd.dim]
    assert np.all(np.abs(int4.layers[0].w1.dequantize() - weights.w1[0]) <= step * 0.5001)


def test_unknown_quant_code_is_refused(tmp_path: Path) -> None:
    data = bytearray(make_random_model(SMALL, seed=1).to_bytes())
    data[8] = 3
    struct.pack_into("<I", data, 60, zlib.crc32(bytes(data[:60])))
    (tmp_path / "m.tpm").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"quantization code 3, .*1 = int8, 2 = int4"):
        read_header(tmp_path / "m.tpm")


@pytest.mark.parametrize(("temperature", "seed"), [(0.0, 0), (0.8, 42)])
def test_int4_and_odd_shapes_match_firmware_host_build(tmp_path: Path, temperature: float, seed: int,
                                                        host_tools: Path) -> None:
    for quant, shape in (("int4", replace(SMALL, hidden_dim=171, group_size=24, shared_classifier=False)),
                         ("int4", SMALL), ("int8", replace(SMALL, hidden_dim=171, group_size=7))):
        model = quantize_weights(random_float_weights(shape, seed=11), shape.group_size, quant=quant)
        model.write(tmp_path / "m.tpm")
        prompt = [1, 40, 41, 42]
        run = subprocess.run([str(host_tools / "tp_generate"), str(tmp_path / "m.tpm"), "20", str(temperature),
                              str(seed), *map(str, prompt)], check=True, capture_output=True, text=True)
        assert [int(t) for t in run.stdout.split()] == generate(model, prompt, 20, temperature, seed), quant


# 1e-40: logits / temperature overflow f32, so both draw greedily (docs/model-format.md, "Sampling")
@pytest.mark.parametrize(("temperature", "seed"), [(0.0, 0), (0.8, 42), (1e-40, 7)])
def test_reference_matches_firmware_host_build(demo: TpmModel, temperature: float,
                                              seed: int, host_tools: Path) -> None:
    assert demo.tokenizer is not None
    prompt = demo.tokenizer.encode("Once upon a time")
    run = subprocess.run([str(host_tools / "tp_generate"), str(DEMO), "40", str(temperature), str(seed),
                          *map(str, prompt)], check=True, capture_output=True, text=True)
    assert [int(t) for t in run.stdout.split()] == generate(demo, prompt, 40, temperature, seed)


@pytest.mark.parametrize(("temperature", "seed"), [(0.0, 0), (0.8, 42)])
def test_fixed_point_reference_matches_fixed_point_host_build(tmp_path: Path, temperature: float, seed: int,
                                                              host_tools_fixed: Path, demo: TpmModel) -> None:
    # The integer forward pass of boards without an FPU, with both kernel variants, against the
    # host's fixed-point reference: int4 and int8, short last groups, odd group sizes, MHA and GQA.
    shapes = (("int4", replace(SMALL, hidden_dim=171, group_size=24, shared_classifier=False)),
              ("int4", SMALL), ("int8", replace(SMALL, hidden_dim=171, group_size=7)),
              ("int8", replace(SMALL, n_kv_heads=4, group_size=64)),
              ("int8", replace(SMALL, dim=48, hidden_dim=130, n_heads=4)),  # head_size 12: 8 + 4 per loop
              ("int4", replace(SMALL, dim=48, hidden_dim=130, n_heads=8, n_kv_heads=4, group_size=16)))
    prompt = [1, 40, 41, 42]
    for quant, shape in shapes:
        model = quantize_weights(random_float_weights(shape, seed=11), shape.group_size, quant=quant)
        model.write(tmp_path / "m.tpm")
        run = subprocess.run([str(host_tools_fixed / "tp_generate"), str(tmp_path / "m.tpm"), "20", str(temperature),
                              str(seed), *map(str, prompt)], check=True, capture_output=True, text=True)
        device = [int(t) for t in run.stdout.split()]
        assert device == generate(model, prompt, 20, temperature, seed, fixed_point=True), (quant, shape)
        assert temperature == 0 or len(set(device)) >= 3  # sampling visits many tokens
    assert demo.tokenizer is not None
    prompt = demo.tokenizer.encode("Once upon a time")
    run = subprocess.run([str(host_tools_fixed / "tp_generate"), str(DEMO), "40", str(temperature), str(seed),
                          *map(str, prompt)], check=True, capture_output=True, text=True)
    assert [int(t) for t in run.stdout.split()] == generate(demo, prompt, 40, temperature, seed, fixed_point=True)


def test_header_constraints_are_checked(tmp_path: Path) -> None:
    data = bytearray(make_random_model(SMALL, seed=1).to_bytes())
    struct.pack_into("<I", data, 24, 5)  # n_heads 5 does not divide dim 32
    struct.pack_into("<I", data, 60, zlib.crc32(bytes(data[:60])))
    (tmp_path / "m.tpm").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="not divisible by n_heads"):
        read_header(tmp_path / "m.tpm")


def test_word_by_word_encoding_equals_llama2c_merging(demo: TpmModel) -> None:
    tokenizer = demo.tokenizer
    assert tokenizer is not None and tokenizer.splits_at_words
    text = CORPUS.read_text(encoding="utf-8")
    tails = [" \u2603x\n  y\tz", "", "\u00a0a b"] * 60
    pieces = [text[i:i + 40 + i % 170] + tail for i, tail in zip(range(0, 5000, 97), tails, strict=False)]
    for piece in pieces:
        assert tokenizer.encode(piece) == tokenizer._encode_whole(piece, True, False), piece
    # a vocabulary with a piece spanning words is merged over the whole text
    for odd in (b"a b", b"\nx", b"<0x0A>x"):
        assert not Tokenizer((*tokenizer.vocab[:-1], odd), tokenizer.scores, 7).splits_at_words
