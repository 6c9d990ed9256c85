"""The matmul kernel sets on the emulated STM32F405: the DSP (SMLAD) kernels and the
portable C ones must give the host reference's logits bit for bit, on shapes chosen to
reach every edge of the SIMD code."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler.api import RunOptions, open_model, plan_run
from profiler.errors import ConfigError
from profiler.models.convert import quantize_weights
from profiler.models.format import ModelConfig
from profiler.models.llama2c import write_checkpoint
from profiler.models.random_model import random_float_weights
from profiler.models.reference import Reference
from profiler.models.tokenizer import train_bpe
from profiler.sinks.jsonl import read_jsonl

pytestmark = pytest.mark.qemu
ROOT = Path(__file__).resolve().parent.parent
KERNELS = ("dsp", "portable")

# gs16: whole groups take the assembly loops; w2's 75 columns end in a group of 11 (not a
#   multiple of 4 or 8), w1/w3 have 75 rows and the classifier 301 (the odd-row paths).
# gs10: groups start mid-word (int8 scalar heads) and rows of 42 bytes are not word
#   aligned (the C SIMD path); int4 runs its scalar groups.
# gs32: the acceptance model's layer (dim 64 in two groups of 32: the 64-column assembly
#   loop; head size 8, grouped-query attention), with hidden 96 for the generic pair loop.
SHAPES = {
    "gs32": ModelConfig(dim=64, hidden_dim=96, n_layers=1, n_heads=8, n_kv_heads=4, vocab_size=301,
                        seq_len=32, group_size=32, shared_classifier=False),
    "gs16": ModelConfig(dim=48, hidden_dim=75, n_layers=2, n_heads=4, n_kv_heads=1, vocab_size=301,
                        seq_len=32, group_size=16, shared_classifier=False),
    "gs10": ModelConfig(dim=42, hidden_dim=75, n_layers=1, n_heads=3, n_kv_heads=1, vocab_size=301,
                        seq_len=32, group_size=10, shared_classifier=False),
}


@pytest.mark.parametrize("quant", ["int8", "int4"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_dsp_and_portable_kernels_give_the_reference_logits_bit_for_bit(
    tmp_path: Path, firmware_image: object, shape: str, quant: str
) -> None:
    config = SHAPES[shape]
    weights = random_float_weights(config, seed=5)
    tokenizer = train_bpe((ROOT / "scripts" / "demo_corpus.txt").read_text(encoding="utf-8"), config.vocab_size)
    path = tmp_path / "awkward.tpm"
    quantize_weights(weights, config.group_size, config.seq_len, tokenizer, quant=quant).write(path)
    write_checkpoint(weights, tmp_path / "awkward-fp32.bin")  # the float model --check-quality compares with
    model, _ = open_model(path)
    streams = {}
    for kernels in KERNELS:
        session, jsonl = plan_run(RunOptions(device="stm32", model=str(path), prompt="The cat sat", tokens=16,
                                             repeat=1, warmup=0, out=tmp_path / kernels, emulate=True,
                                             check_quality=True, kernels=kernels))
        summary = session.run()
        records = read_jsonl(jsonl)
        assert records[0]["firmware_id"].endswith(f"+{kernels}")
        assert summary.quality is not None and summary.quality["logits_match_reference"] is True, summary.quality
        assert summary.quality["text_tokens"] == config.seq_len  # every position's logits compared
        streams[kernels] = [r["token_id"] for r in records if r["type"] == "token"]
        assert streams[kernels] == Reference(model).generate(records[0]["prompt_tokens"], 16, 0.0, 0)
    assert streams["dsp"] == streams["portable"] and len(set(streams["dsp"])) > 3


def test_unknown_kernel_set_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="choose one of: dsp, portable"):
        plan_run(RunOptions(device="stm32", model="demo", emulate=True, out=tmp_path, kernels="neon"))
    with pytest.raises(ConfigError, match="choose one of: rv32, portable"):
        plan_run(RunOptions(device="riscv", model="demo", emulate=True, out=tmp_path, kernels="dsp"))
