"""End to end on the frontier cores: QEMU's mps2-an500 (Cortex-M7, `--device m7`) and mps3-an547
(Cortex-M55 with Helium, `--device m55`), real firmware over the pyserial path, token-for-token and
logit-for-logit parity with the host reference for every kernel set each port builds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from profiler.api import RunOptions, open_model, plan_run
from profiler.firmware import kernel_variants
from profiler.models.convert import quantize_weights
from profiler.models.format import ModelConfig
from profiler.models.llama2c import write_checkpoint
from profiler.models.random_model import random_float_weights
from profiler.models.reference import Reference
from profiler.models.tokenizer import train_bpe
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI

pytestmark = pytest.mark.qemu
ROOT = Path(__file__).resolve().parent.parent
# device -> (board in HELLO, firmware port, machine, core, modelled clock, SysTick Hz, RAM)
BOARDS = {
    "m7": ("mps2-an500", "mps2-an500", "mps2-an500", "cortex-m7", 480_000_000, 25_000_000, 512 * 1024),
    "m55": ("mps3-an547", "mps3-an547", "mps3-an547", "cortex-m55", 800_000_000, 32_000_000, 2 * 1024 * 1024),
}
# The acceptance model's layer shape (head size 8, grouped-query attention, groups of 32), and awkward
# ones: head size 12, one kv head, groups of 16 that end in a short one (hidden 75), 301 classifier rows.
SHAPES = {
    "gs32": ModelConfig(dim=64, hidden_dim=96, n_layers=1, n_heads=8, n_kv_heads=4, vocab_size=301,
                        seq_len=32, group_size=32, shared_classifier=False),
    "gs16": ModelConfig(dim=48, hidden_dim=75, n_layers=2, n_heads=4, n_kv_heads=1, vocab_size=301,
                        seq_len=32, group_size=16, shared_classifier=False),
    # groups of 64 with a last one of 32 (hidden 160), head size 32 (two 16-lane q.k chunks, the generic att.v)
    "gs64": ModelConfig(dim=128, hidden_dim=160, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=301,
                        seq_len=32, group_size=64, shared_classifier=False),
}


@pytest.mark.parametrize("device", sorted(BOARDS))
def test_demo_run_is_valid_matches_reference_and_repeats_exactly(tmp_path: Path, device: str) -> None:
    board, port, machine, core, clock_hz, timer_hz, ram = BOARDS[device]
    summaries = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        result = subprocess.run([*CLI, "run", "--device", device, "--emulate", "--model", "demo", "--tokens", "8",
                                 "--repeat", "5", "--out", str(out), "--json"],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        (path,) = sorted(p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl"))
        header = read_jsonl(path)[0]
        assert header["board"] == board and header["core"] == core and header["platform"] == "mps"
        assert header["clock_hz"] == clock_hz and header["timer_hz"] == timer_hz
        assert header["emulated"] is True and header["emulator"]["machine"] == machine
        assert header["firmware_id"].startswith(f"{port}-") and header["firmware_id"].endswith(
            f"+{kernel_variants(port)[0]}")
        assert header["arithmetic"] == "f32" and header["ram_total_bytes"] == ram
        assert summary["status"] == "ok" and summary["valid"] is True, summary["reasons"]
        assert summary["reference_match"] is True and summary["frames_lost"] == 0
        assert 0 < summary["peak_ram_bytes"] < ram
        summaries.append(summary)
    a, b = summaries
    for key in ("decode_tokens_per_s", "ttft_ms", "decode_instructions_per_token"):
        assert a[key] == b[key], key


def _kernel_cases() -> list[tuple[str, str]]:
    return [(device, kernels) for device, (_, port, *_rest) in sorted(BOARDS.items())
            for kernels in kernel_variants(port)]


@pytest.mark.parametrize(("device", "kernels"), _kernel_cases())
def test_every_kernel_set_gives_the_reference_logits_bit_for_bit(tmp_path: Path, device: str, kernels: str) -> None:
    # Every set on the acceptance layer in int8 and int4; the port's default set also on the awkward shape.
    default = kernel_variants(BOARDS[device][1])[0]
    shapes = sorted(SHAPES) if kernels == default else ["gs32"]
    for shape in shapes:
        config = SHAPES[shape]
        weights = random_float_weights(config, seed=5)
        tokenizer = train_bpe((ROOT / "scripts" / "demo_corpus.txt").read_text(encoding="utf-8"), config.vocab_size)
        for quant in ("int8", "int4"):
            write_checkpoint(weights, tmp_path / f"{shape}-{quant}-fp32.bin")  # what --check-quality compares with
            path = tmp_path / f"{shape}-{quant}.tpm"
            quantize_weights(weights, config.group_size, config.seq_len, tokenizer, quant=quant).write(path)
            model, _ = open_model(path)
            session, jsonl = plan_run(RunOptions(device=device, model=str(path), prompt="The cat sat", tokens=12,
                                                 repeat=1, warmup=0, out=tmp_path / f"{shape}-{quant}", emulate=True,
                                                 check_quality=True, kernels=kernels))
            summary = session.run()
            records = read_jsonl(jsonl)
            assert records[0]["firmware_id"].endswith(f"+{kernels}")
            assert summary.quality is not None and summary.quality["logits_match_reference"] is True, summary.quality
            assert summary.quality["text_tokens"] == config.seq_len
            tokens = [r["token_id"] for r in records if r["type"] == "token"]
            assert tokens == Reference(model).generate(records[0]["prompt_tokens"], 12, 0.0, 0)


def test_model_fit_prints_one_row_per_board_with_fit_and_ceilings() -> None:
    from platforms.boards import BOARDS

    result = subprocess.run([*CLI, "model", "fit", "demo"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert set(rows) == {b.name for b in BOARDS}
    assert rows["mps3-an547"][-3] == "yes" and rows["gd32vf103"][-3] == "NO"  # 297 KB of demo in a 64 KB region: no
    assert float(rows["stm32n657"][-2].replace(",", "")) > float(rows["stm32h743"][-2].replace(",", ""))
