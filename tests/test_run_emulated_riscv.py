"""End to end on the emulated RISC-V board (`qemu-system-riscv32 -M virt`, rv32imac): real QEMU, the real
riscv-virt firmware, the pyserial path; and token-for-token parity with the host reference.

The rv32imac core has no FPU, so its firmware runs the fixed-point forward pass (HELLO capability bit 5) and
the host checks it against the fixed-point reference. The runs use a short prompt and 8 generated tokens
(the STM32 tests use 32).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from profiler.api import RunOptions, open_model, plan_run
from profiler.firmware import FirmwareImage, ensure_firmware
from profiler.models.format import ModelConfig
from profiler.models.random_model import make_random_model
from profiler.models.reference import Reference
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI

pytestmark = pytest.mark.qemu
DEMO = Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm"


@pytest.fixture(scope="module")
def riscv_firmware() -> FirmwareImage:
    """The riscv-virt firmware for the current sources (built into the tests' private cache)."""
    return ensure_firmware("riscv-virt")


def test_riscv_demo_run_is_valid_matches_reference_and_repeats_exactly(
    tmp_path: Path, riscv_firmware: FirmwareImage
) -> None:
    summaries = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        result = subprocess.run([*CLI, "run", "--device", "riscv", "--emulate", "--model", "demo", "--prompt",
                                 "The cat", "--tokens", "8", "--repeat", "5", "--warmup", "1", "--out", str(out),
                                 "--json"], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        (path,) = sorted(p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl"))
        records = read_jsonl(path)
        header = records[0]
        assert header["type"] == "session" and {k: summary[k] for k in records[-1]} == records[-1]
        assert summary["family"] == "riscv" and summary["firmware_id"] == header["firmware_id"]
        assert header["emulated"] is True and header["device"] == "riscv" and header["board"] == "riscv32-virt"
        assert header["platform"] == "riscv" and header["core"] == "rv32imac"
        assert header["clock_hz"] == 125_000_000 and header["timer_hz"] == 10_000_000
        assert header["firmware_id"].startswith("riscv-virt-")
        assert header["emulator"]["program"] == "qemu-system-riscv32" and header["emulator"]["machine"] == "virt"
        assert header["arithmetic"] == "fixed-point"  # no FPU: the integer forward pass
        assert len([r for r in records if r["type"] == "token"]) == (1 + 5) * 8
        assert summary["status"] == "ok" and summary["valid"] is True, summary["reasons"]
        assert summary["reference_match"] is True
        assert summary["frames_corrupt"] == 0 and summary["frames_lost"] == 0
        assert summary["peak_ram_bytes"] <= 128 * 1024
        summaries.append(summary)
    a, b = summaries
    for key in ("decode_tokens_per_s", "prefill_tokens_per_s", "ttft_ms", "decode_instructions_per_token"):
        assert a[key] == b[key], key
    assert a["decode_tokens_per_s_stddev"] == 0.0


def test_riscv_generates_the_reference_tokens_greedy_and_sampled(tmp_path: Path, riscv_firmware: FirmwareImage) -> None:
    # Another shape than the demo: 3 layers, 2 KV heads, a short last quantisation group, its own classifier.
    config = ModelConfig(dim=64, hidden_dim=172, n_layers=3, n_heads=8, n_kv_heads=2, vocab_size=512,
                         seq_len=64, group_size=32, shared_classifier=False)
    demo, _ = open_model(DEMO)
    path = tmp_path / "parity.tpm"
    make_random_model(config, seed=11, tokenizer=demo.tokenizer).write(path)
    model, _ = open_model(path)
    for temperature, seed in ((0.0, 0), (0.9, 4321)):
        session, jsonl = plan_run(RunOptions(device="riscv", model=str(path), prompt="The dog", tokens=12,
                                             repeat=1, warmup=0, temperature=temperature, seed=seed,
                                             out=tmp_path / f"t{temperature}", emulate=True))
        session.run()
        records = read_jsonl(jsonl)
        device = [r["token_id"] for r in records if r["type"] == "token"]
        assert records[0]["arithmetic"] == "fixed-point"
        expected = Reference(model, fixed_point=True).generate(records[0]["prompt_tokens"], 12, temperature, seed)
        assert device == expected
        assert len(set(device)) >= (2 if temperature == 0 else 6)
        (rep,) = [r for r in records if r["type"] == "repetition"]
        assert rep["matches_reference"] is True


@pytest.mark.parametrize("model", ["demo", "demo-int4"])
def test_riscv_logits_are_the_fixed_point_reference_bit_for_bit(tmp_path: Path, riscv_firmware: FirmwareImage,
                                                                 model: str) -> None:
    # EVAL on the fixed-point board: every logit of a 64-token text equals the host's fixed-point reference
    # bit for bit, and the figures against the fp32 model stay close to those of the f32 arithmetic.
    session, jsonl = plan_run(RunOptions(device="riscv", model=model, tokens=4, repeat=5, warmup=0,
                                         out=tmp_path, emulate=True, check_quality=True))
    session.run()
    records = read_jsonl(jsonl)
    summary = records[-1]
    assert records[0]["arithmetic"] == "fixed-point"
    assert summary["status"] == "ok" and summary["valid"] is True, summary["reasons"]
    quality = summary["quality"]
    assert quality["logits_match_reference"] is True and quality["first_mismatch_position"] is None
    assert quality["text_tokens"] == 64
    assert quality["top1_agreement"] >= (0.98 if model == "demo" else 0.9)
    assert quality["kl_mean"] < (1e-3 if model == "demo" else 1e-2)


def test_riscv_forward_pass_calls_no_soft_float_routine(riscv_firmware: FirmwareImage) -> None:
    # The fixed-point pass, read from the firmware's own disassembly: the forward pass and every routine it
    # reaches call only integer helpers of libgcc (64-bit division, count leading zeros), never __*sf*.
    dump = subprocess.run(["riscv64-unknown-elf-objdump", "-d", str(riscv_firmware.elf)], capture_output=True,
                          text=True, check=True).stdout
    calls: dict[str, set[str]] = {}
    current = ""
    for line in dump.splitlines():
        head = re.match(r"^[0-9a-f]+ <([A-Za-z0-9_.]+)>:$", line)
        if head:
            current = head.group(1)
            calls[current] = set()
        else:
            target = re.search(r"\s(?:jal|j|call|tail)\s+(?:ra,)?[0-9a-f]+ <([A-Za-z0-9_.]+)(?:\+0x[0-9a-f]+)?>", line)
            if target and current:
                calls[current].add(target.group(1))
    reached, todo = set(), ["tp_forward"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += sorted(calls.get(name, set()))
    assert {"tp_matmul_q8_fx", "tp_fx_rmsnorm", "tp_fx_softmax", "tp_fx_swiglu"} <= reached
    assert not [n for n in reached if n.startswith("__") and n.endswith(("sf2", "sf3", "sfsi", "sisf"))], reached
    assert "tp_exp" not in reached and "tp_softmax" not in reached  # the f32 ones stay for sampling


def test_riscv_portable_kernels_give_the_same_tokens_as_the_rv32_ones(tmp_path: Path) -> None:
    # Both kernel sets must match the fixed-point reference, and the RV32 ones must be the faster.
    figures = {}
    for kernels in ("portable", "rv32"):
        result = subprocess.run([*CLI, "run", "--device", "riscv", "--emulate", "--model", "demo-int4", "--prompt",
                                 "The cat", "--tokens", "8", "--repeat", "5", "--warmup", "0", "--kernels", kernels,
                                 "--out", str(tmp_path / kernels), "--json"], capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["valid"] is True and summary["reference_match"] is True, summary["reasons"]
        figures[kernels] = summary["decode_instructions_per_token"]
    assert figures["rv32"] < 0.9 * figures["portable"]
