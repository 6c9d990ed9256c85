"""The fixed-point arithmetic of boards without an FPU (`profiler/models/fixed.py`): its primitives against
exact maths, and its forward pass against the f32 one and the fp32 model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from profiler.models import DEMO_MODEL_PATH
from profiler.models import fixed as fx
from profiler.models.convert import read_float_weights
from profiler.models.evaluate import evaluate
from profiler.models.format import TpmModel
from profiler.models.reference import Reference, rmsnorm

ROOT = Path(__file__).resolve().parent.parent


def test_exp_is_close_to_exp_and_monotone() -> None:
    d = np.append(np.arange(-(16 << 16), 0, 37, dtype=np.int64), 0)  # Q16 arguments in [-16, 0]
    e = fx.exp_q30(d)
    exact = np.exp(d / 65536.0) * 2.0**30
    assert e[-1] == 1 << 30 and np.all(np.diff(e) >= 0)
    # Q16 coefficients and four floored Horner steps (about 5e-5), then the floor of a Q30 result
    assert np.all(np.abs(e - exact) <= 6e-5 * exact + 2)
    assert fx.exp_q30(np.array([-(1 << 31)]))[0] == 0


def test_softmax_and_swiglu_follow_the_real_functions() -> None:
    scores = np.array([[0, 1 << 16, -(3 << 16), 5 << 15]], dtype=np.int64)
    p = fx.softmax_q30(scores)[0] / 2.0**30
    real = np.exp(scores[0] / 65536.0) / np.exp(scores[0] / 65536.0).sum()
    assert np.max(np.abs(p - real)) < 1e-4 and p.sum() <= 1.0
    a = np.arange(-(12 << 16), 12 << 16, 4099, dtype=np.int64)
    out = fx.swiglu(a, np.full_like(a, 1 << 16)) / 65536.0
    x = a / 65536.0
    assert np.max(np.abs(out - x / (1 + np.exp(-x)))) < 5e-4


def test_quantize_and_matmul_scales() -> None:
    x = np.array([0, 65536, -32768, 1 << 20, -(1 << 20) + 5, 7, 0, 0], dtype=np.int64)
    q = fx.quantize(x, 4, 127, 0)
    np.testing.assert_array_equal(q.q, [0, 8, -4, 127, -127, 0, 0, 0])  # 127 * 2^16 / 2^20 = 7.94
    # the scale amax/127 as mantissa * 2^-k, the mantissa in [2048, 4096)
    assert 2048 <= q.mant[0] < 4096 and q.mant[0] * 2.0 ** -(q.base[0]) == pytest.approx((1 << 20) / 127, rel=1e-3)
    assert q.mant[1] * 2.0 ** -(q.base[1]) == pytest.approx(((1 << 20) - 5) / 127, rel=1e-3)
    big = fx.quantize(np.array([2**31 - 1, -(2**30)], dtype=np.int64), 2, 127, 0)
    np.testing.assert_array_equal(big.q, [127, -64])


def test_logits_convert_to_the_nearest_float() -> None:
    x = np.array([0, 1, -1, 2**24 + 1, 2**24 + 3, -(2**31), 2**31 - 1, 65536], dtype=np.int64)
    got = fx.to_f32(x)
    want = np.array([math.ldexp(float(np.float32(v)), -16) for v in x], dtype=np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert got[-1] == 1.0


def test_rmsnorm_and_mulf_against_float() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, 64).astype(np.float32)
    w = rng.uniform(-1.5, 1.5, 64).astype(np.float32)
    got = fx.rmsnorm(np.round(x * 65536).astype(np.int64), w) / 65536.0
    np.testing.assert_allclose(got, rmsnorm(x, w), atol=1e-4)
    assert fx.mulf(3, fx.f32_bits(np.float32(0.5)), 16) == 3 << 15
    assert fx.mulf(3, fx.f32_bits(np.float32(-0.5)), 16) == -(3 << 15)
    assert fx.mulf(7, fx.f32_bits(np.float32(1e-40)), 16) == 0  # subnormal scale: 0


def test_fixed_point_forward_is_close_to_f32_and_the_fp32_model() -> None:
    demo = TpmModel.read(DEMO_MODEL_PATH)
    assert demo.tokenizer is not None
    tokens = demo.tokenizer.encode("Once upon a time, there was a little girl named Lily. She had a ball.", bos=True)
    a = Reference(demo).sequence_logits(tokens)
    b = Reference(demo, fixed_point=True).sequence_logits(tokens)
    assert b.dtype == np.float32 and b.shape == a.shape
    assert np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)) >= 0.95
    assert np.max(np.abs(a - b)) < 0.05 * np.max(np.abs(a))
    sys.path.insert(0, str(ROOT / "scripts"))
    from story_corpus import stories

    text = "\n".join(stories(8, 12345))  # held out: not the training seed
    weights = read_float_weights(DEMO_MODEL_PATH.parent / "demo-fp32.bin")
    f32 = evaluate(demo, text, weights, max_windows=3)
    fixed = evaluate(demo, text, weights, max_windows=3, fixed_point=True)
    assert fixed.quantization == "int8-fixed" and fixed.tokens == f32.tokens
    assert fixed.top1_agreement is not None and f32.top1_agreement is not None and fixed.kl_mean is not None
    assert fixed.top1_agreement >= f32.top1_agreement - 0.01 and fixed.kl_mean < 2e-4


def test_model_eval_cli_measures_the_fixed_point_arithmetic(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("Once upon a time, there was a little girl named Lily. She had a red ball.\n", encoding="utf-8")
    out = {}
    for flag in ([], ["--fixed-point"]):
        result = subprocess.run([sys.executable, "-m", "profiler.cli", "model", "eval", "demo", "--text", str(text),
                                 "--json", *flag], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        out[bool(flag)] = json.loads(result.stdout)
    assert out[False]["quantization"] == "int8" and out[True]["quantization"] == "int8-fixed"
    assert out[True]["tokens"] == out[False]["tokens"] > 10
    assert out[True]["top1_agreement"] >= 0.9 and out[True]["kl_mean"] < 1e-3


def test_the_firmware_sigmoid_table_is_the_exact_one() -> None:
    source = (ROOT / "firmware" / "core" / "fixed.c").read_text(encoding="utf-8")
    body = source.split("sigmoid_q15[513] = {", 1)[1].split("};", 1)[0]
    assert [int(v) for v in body.replace(",", " ").split()] == fx.sigmoid_table()
    assert fx.SIGMOID_Q15[0] == 16384 and fx.SIGMOID_Q15[-1] == 32768 and np.all(np.diff(fx.SIGMOID_Q15) >= 0)
    i = np.arange(513)
    assert np.max(np.abs(fx.SIGMOID_Q15 - 32768 / (1 + np.exp(-i / 32)))) <= 0.5
