"""Quantization error (`model eval`), the batched reference, `model inspect` and fit boundaries."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from profiler.errors import FitError, ModelError
from profiler.models import DEMO_MODEL_PATH
from profiler.models.convert import quantize_weights
from profiler.models.evaluate import evaluate, float_logits, text_tokens, windows
from profiler.models.fit import arena_bytes, check_fit
from profiler.models.format import ModelConfig, TpmModel, read_header
from profiler.models.inspect import costs
from profiler.models.llama2c import write_checkpoint
from profiler.models.random_model import random_float_weights
from profiler.models.reference import Reference
from tests.cli import CLI

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "scripts" / "demo_corpus.txt"
SHAPE = ModelConfig(dim=64, hidden_dim=172, n_layers=2, n_heads=8, n_kv_heads=4, vocab_size=512, seq_len=32)


@pytest.fixture(scope="module")
def demo() -> TpmModel:
    return TpmModel.read(DEMO_MODEL_PATH)


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_sequence_logits_are_bit_identical_to_the_token_by_token_reference(demo: TpmModel, quant: str) -> None:
    weights = random_float_weights(replace(SHAPE, shared_classifier=quant == "int8"), seed=3)
    model = quantize_weights(weights, 32, quant=quant)
    tokens = [1, *range(300, 331)]
    batched = Reference(model).sequence_logits(tokens)
    ref = Reference(model)
    stepwise = np.stack([ref.forward(token, pos) for pos, token in enumerate(tokens)])
    assert batched.dtype == np.float32
    np.testing.assert_array_equal(batched.view(np.uint32), stepwise.view(np.uint32))


def test_float_forward_is_close_to_the_int8_reference() -> None:
    weights = random_float_weights(SHAPE, seed=5)
    tokens = [1, 40, 300, 301, 7, 99, 200, 12]
    fp32 = float_logits(weights, tokens)
    int8 = Reference(quantize_weights(weights, 32)).sequence_logits(tokens)
    assert np.corrcoef(fp32.ravel(), int8.ravel())[0, 1] > 0.99
    assert np.mean(fp32.argmax(-1) == int8.argmax(-1)) >= 0.75


def test_windows_cover_the_text_once(demo: TpmModel) -> None:
    assert demo.tokenizer is not None
    tokens = text_tokens("One line.\n\nAnother line here.\n", demo.tokenizer)
    assert tokens[0] == 1 and tokens.count(1) == 2
    parts = list(windows(list(range(10)), 4))
    assert parts == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9]]  # every token but the first is a target once
    assert list(windows(list(range(10)), 4, limit=1)) == [[0, 1, 2, 3, 4]]


def test_eval_reports_int4_worse_than_int8(demo: TpmModel) -> None:
    weights = random_float_weights(replace(SHAPE, seq_len=64), seed=2)
    text = CORPUS.read_text(encoding="utf-8")
    int8 = evaluate(quantize_weights(weights, 32, tokenizer=demo.tokenizer), text, weights, max_windows=6)
    int4 = evaluate(quantize_weights(weights, 32, tokenizer=demo.tokenizer, quant="int4"), text, weights,
                    max_windows=6)
    assert int8.tokens == int4.tokens == 6 * 64 and int8.windows == 6
    assert int8.perplexity_fp32 == int4.perplexity_fp32
    assert 0 <= int8.kl_mean < int4.kl_mean  # type: ignore[operator]
    assert int8.top1_agreement >= int4.top1_agreement and int8.top1_agreement > 0.8  # type: ignore[operator]
    assert int8.quantization_error_rate == pytest.approx(1 - int8.top1_agreement)  # type: ignore[operator]
    alone = evaluate(quantize_weights(weights, 32, tokenizer=demo.tokenizer), text, None, max_windows=2)
    assert alone.top1_agreement is None and alone.perplexity > 1


def test_eval_refuses_a_reference_of_another_shape(demo: TpmModel) -> None:
    other = random_float_weights(replace(SHAPE, n_layers=3), seed=1)
    with pytest.raises(ModelError, match="pass the float checkpoint the model was converted from"):
        evaluate(quantize_weights(random_float_weights(SHAPE, seed=1), 32, tokenizer=demo.tokenizer), "a b", other)


def test_model_eval_cli(tmp_path: Path, demo: TpmModel) -> None:
    assert demo.tokenizer is not None
    weights = random_float_weights(replace(SHAPE, seq_len=64), seed=2)
    write_checkpoint(weights, tmp_path / "m.bin")
    quantize_weights(weights, 32, tokenizer=demo.tokenizer, quant="int4").write(tmp_path / "m.tpm")
    result = subprocess.run([*CLI, "model", "eval", str(tmp_path / "m.tpm"), "--reference", str(tmp_path / "m.bin"),
                             "--text", str(CORPUS), "--max-windows", "3", "--json"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["quantization"] == "int4" and figures["tokens"] == 192
    assert 0 < figures["top1_agreement"] <= 1 and figures["kl_mean"] > 0
    assert figures["quantization_error_rate"] == pytest.approx(1 - figures["top1_agreement"])
    result = subprocess.run([*CLI, "model", "eval", str(tmp_path / "m.tpm"), "--text", str(tmp_path / "none.txt")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 3 and "cannot read --text" in result.stderr


def test_costs_of_the_stories260k_shape(demo: TpmModel) -> None:
    c = costs(demo.config)
    assert c.params == 260_032 and c.weight_macs == 259_328  # docs/DESIGN reference figures
    assert c.attention_macs_full == 2 * 5 * 8 * 8 * 64 and c.kv_cache_bytes == 30_720
    assert c.flash_bytes_per_token < DEMO_MODEL_PATH.stat().st_size
    int4 = costs(replace(demo.config, quant="int4"))
    assert int4.weight_macs == c.weight_macs and int4.flash_bytes_per_token < 0.6 * c.flash_bytes_per_token


def test_model_inspect_cli_prints_fit_and_ceilings(firmware_image: object) -> None:
    result = subprocess.run([*CLI, "model", "inspect", "demo", "--device", "stm32f405"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in ("parameters   260,032", "MACs/token", "bytes/token", "RAM needed   37,512 B", "flash        fits",
                   "RAM          fits", "firmware ELF stm32f4-", "compute", "tokens/s ceiling at 2 MACs/cycle",
                   "bandwidth", "verdict      fits stm32f405"):
        assert needle in out, needle
    bare = subprocess.run([*CLI, "model", "inspect", "demo"], capture_output=True, text=True, check=False)
    assert bare.returncode == 0 and "verdict" not in bare.stdout and "parameters" in bare.stdout


def test_fit_checks_at_exact_boundaries(demo: TpmModel) -> None:
    cfg, size = demo.config, DEMO_MODEL_PATH.stat().st_size
    need = arena_bytes(cfg)
    check_fit(size, cfg, size, need, "b")  # exactly full: fits
    with pytest.raises(FitError, match=rf"\({size:,} bytes\) but the b model flash region has .* \({size - 1:,} bytes"):
        check_fit(size, cfg, size - 1, need, "b")
    with pytest.raises(FitError, match=rf"\({need:,} bytes\) for its buffers but the b arena has .*\({need - 1:,} b"):
        check_fit(size, cfg, size, need - 1, "b")
    assert read_header(DEMO_MODEL_PATH).file_bytes == size


@pytest.mark.qemu
def test_run_refuses_a_model_larger_than_flash_before_qemu_starts(tmp_path: Path, demo: TpmModel,
                                                                  firmware_image: object) -> None:
    from profiler.models.random_model import make_random_model

    big = ModelConfig(dim=256, hidden_dim=512, n_layers=2, n_heads=8, n_kv_heads=8, vocab_size=512, seq_len=48)
    path = tmp_path / "big.tpm"
    make_random_model(big, seed=1, tokenizer=demo.tokenizer).write(path)
    size = path.stat().st_size
    assert size > 896 * 1024
    result = subprocess.run([*CLI, "run", "--device", "stm32", "--emulate", "--model", str(path), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert result.returncode == 5, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and f"({size:,} bytes)" in line and "(917,504 bytes)" in line and "stm32f405" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.jsonl"))


@pytest.mark.qemu
def test_run_check_quality_on_the_cli_puts_the_boards_logits_in_the_summary(tmp_path: Path,
                                                                          firmware_image: object) -> None:
    text = tmp_path / "story.txt"
    text.write_text("Once upon a time there was a little girl named Zoe. She went to the farm.\n")
    done = subprocess.run([*CLI, "run", "--device", "stm32", "--emulate", "--model", "demo", "--tokens", "8",
                           "--repeat", "5", "--check-quality", "--quality-text", str(text), "--out",
                           str(tmp_path / "out"), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    quality = summary["quality"]
    assert quality["logits_match_reference"] is True and quality["first_mismatch_position"] is None
    assert quality["tokens"] > 10 and 0.9 <= quality["top1_agreement"] <= 1.0 and quality["kl_mean"] < 0.01
    assert summary["quantization_error_rate"] == pytest.approx(1.0 - quality["top1_agreement"])
    missing = subprocess.run([*CLI, "run", "--device", "stm32", "--emulate", "--model", "demo", "--check-quality",
                              "--quality-text", str(tmp_path / "none.txt"), "--out", str(tmp_path / "bad")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 3 and missing.stderr.strip().startswith("error: cannot read --quality-text")
    assert len(missing.stderr.strip().splitlines()) == 1
