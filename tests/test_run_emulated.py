"""End to end on the emulated STM32F405: real QEMU, real firmware, the pyserial path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profiler.api import RunOptions, open_model, plan_run
from profiler.models.format import ModelConfig
from profiler.models.llama2c import write_checkpoint
from profiler.models.random_model import make_random_model, random_float_weights
from profiler.models.reference import Reference
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI

pytestmark = pytest.mark.qemu
DEMO = Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, env=env, timeout=600)


def _records(out: Path) -> list[dict]:  # type: ignore[type-arg]
    (path,) = sorted(p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl"))
    return read_jsonl(path)


def test_demo_run_is_valid_matches_reference_and_repeats_exactly(tmp_path: Path, firmware_image: object) -> None:
    summaries = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        result = _cli("run", "--device", "stm32", "--emulate", "--model", "demo", "--tokens", "32",
                      "--repeat", "5", "--out", str(out), "--json")
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        records = _records(out)
        assert records[0]["type"] == "session" and records[-1]["type"] == "summary"
        assert [r["type"] for r in records].count("session") == 1
        assert {k: summary[k] for k in records[-1]} == records[-1]  # the summary record, plus the identity
        assert summary["board"] == "stm32f405" and summary["firmware_id"] == records[0]["firmware_id"]
        header = records[0]
        assert header["emulated"] is True and header["board"] == "stm32f405"
        assert header["clock_hz"] == 168_000_000 and header["firmware_id"].startswith("stm32f4-")
        assert header["arithmetic"] == "f32"  # the Cortex-M4F has an FPU
        assert len(header["model_sha256"]) == 64 and header["prompt_tokens"][0] == 1
        tokens = [r for r in records if r["type"] == "token"]
        assert len(tokens) == (1 + 5) * 32
        assert all(t["ticks"] > 0 for t in tokens)
        assert summary["status"] == "ok" and summary["valid"] is True, summary["reasons"]
        assert summary["decode_tokens_per_s"] > 0 and summary["ttft_ms"] > 0
        assert summary["reference_match"] is True
        assert summary["frames_corrupt"] == 0 and summary["frames_lost"] == 0
        assert summary["decode_instructions_per_token"] > 100_000
        peak = summary["static_ram_bytes"] + summary["arena_used_bytes"] + summary["stack_peak_bytes"]
        assert summary["peak_ram_bytes"] == peak <= summary["ram_total_bytes"] == 128 * 1024
        assert summary["model_bytes"] == DEMO.stat().st_size
        sections = header["firmware_sections"]
        assert summary["flash_used_bytes"] == sum(sections.values()) - sections[".bss"]
        summaries.append(summary)
    a, b = summaries
    for key in ("decode_tokens_per_s", "prefill_tokens_per_s", "ttft_ms", "decode_instructions_per_token"):
        assert a[key] == b[key], key
    assert a["decode_tokens_per_s_stddev"] == 0.0  # -icount: every repetition takes the same instructions


@pytest.mark.parametrize("kernels", ["dsp", "portable"])
@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_converted_llama2c_checkpoint_runs_on_device_equal_to_reference(
    tmp_path: Path, firmware_image: object, quant: str, kernels: str
) -> None:
    # A legacy llama2.c checkpoint with its tokenizer.bin beside it, converted by the CLI.
    # hidden_dim 172 leaves a short last group of 12; an unshared classifier takes the other path.
    config = ModelConfig(dim=64, hidden_dim=172, n_layers=3, n_heads=8, n_kv_heads=2, vocab_size=512,
                         seq_len=64, group_size=32, shared_classifier=False)
    demo, _ = open_model(DEMO)
    assert demo.tokenizer is not None
    write_checkpoint(random_float_weights(config, seed=2), tmp_path / "stories.bin")  # varied greedy output
    demo.tokenizer.save(tmp_path / "tokenizer.bin")
    path = tmp_path / "stories.tpm"
    result = _cli("model", "convert", str(tmp_path / "stories.bin"), "-o", str(path), "--quant", quant)
    assert result.returncode == 0, result.stderr
    assert "hidden 172" in result.stdout and quant in result.stdout
    model, _ = open_model(path)
    assert model.classifier is not None and model.config.seq_len == 64 and model.config.quant == quant
    for temperature, seed in ((0.0, 0), (0.9, 1234)):
        out = tmp_path / f"t{temperature}"
        session, jsonl = plan_run(RunOptions(device="stm32", model=str(path), prompt="The cat sat",
                                             tokens=40, repeat=1, warmup=0, temperature=temperature,
                                             seed=seed, out=out, emulate=True, kernels=kernels))
        session.run()
        records = read_jsonl(jsonl)
        assert records[0]["firmware_id"].endswith(f"+{kernels}")
        device = [r["token_id"] for r in records if r["type"] == "token"]
        prompt = records[0]["prompt_tokens"]
        assert device == Reference(model).generate(prompt, 40, temperature, seed)
        assert len(set(device)) >= (10 if temperature == 0 else 8)  # not a constant stream
        (rep,) = [r for r in records if r["type"] == "repetition"]
        assert rep["matches_reference"] is True and rep["valid"] is True
        assert records[-1]["status"] == "invalid"  # one repetition is below the validity minimum
        assert "minimum" in " ".join(records[-1]["reasons"])


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--device", "stm32", "--model", "/nonexistent"], 4, "model /nonexistent not found"),
        (["--device", "esp99", "--model", "demo"], 3, "unknown device 'esp99'; known devices: stm32f405"),
        (["--device", "stm32", "--model", "demo", "--tokens", "200"], 3, "seq_len 64"),
    ],
)
def test_bad_input_is_one_line_and_distinct_exit_code(args: list[str], code: int, needle: str, tmp_path: Path) -> None:
    result = _cli("run", "--emulate", "--out", str(tmp_path), *args)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.jsonl"))  # nothing launched, nothing written


def test_corrupt_and_oversized_models_are_refused_before_launch(tmp_path: Path, firmware_image: object) -> None:
    demo = DEMO.read_bytes()
    corrupt = tmp_path / "corrupt.tpm"
    corrupt.write_bytes(demo[:5000] + bytes([demo[5000] ^ 1]) + demo[5001:])
    result = _cli("run", "--device", "stm32", "--emulate", "--model", str(corrupt), "--out", str(tmp_path))
    assert result.returncode == 4 and "corrupt" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    wrong = tmp_path / "checkpoint.bin"
    wrong.write_bytes(b"\x20\x01\x00\x00" * 64)
    result = _cli("run", "--device", "stm32", "--emulate", "--model", str(wrong), "--out", str(tmp_path))
    assert result.returncode == 4 and "model convert" in result.stderr
    big = ModelConfig(dim=64, hidden_dim=172, n_layers=5, n_heads=8, n_kv_heads=4, vocab_size=512,
                      seq_len=512, group_size=32, shared_classifier=True)
    demo_model, _ = open_model(DEMO)
    path = tmp_path / "long-context.tpm"
    make_random_model(big, seed=1, tokenizer=demo_model.tokenizer).write(path)
    result = _cli("run", "--device", "stm32", "--emulate", "--model", str(path), "--out", str(tmp_path))
    assert result.returncode == 5, result.stderr
    assert "KB of RAM" in result.stderr and "stm32f405" in result.stderr
    assert not list(tmp_path.glob("*.jsonl"))


def test_missing_tools_name_their_debian_packages(tmp_path: Path, firmware_image: object) -> None:
    bare = dict(os.environ, PATH=str(Path(sys.executable).parent))
    argv = ("run", "--device", "stm32", "--emulate", "--model", "demo", "--out", str(tmp_path))
    # No firmware built yet and no cross compiler: the compiler's package is named.
    result = _cli(*argv, env=dict(bare, TINY_PROFILER_CACHE=str(tmp_path / "empty-cache")))
    assert result.returncode == 6
    assert "arm-none-eabi-gcc is not installed" in result.stderr and "gcc-arm-none-eabi" in result.stderr
    # Firmware already cached (the fixture built it) but no QEMU.
    result = _cli(*argv, env=bare)
    assert result.returncode == 6
    assert "qemu-system-arm is not installed" in result.stderr and "apt-get install qemu-system-arm" in result.stderr
    assert not list(tmp_path.glob("*.jsonl"))


def _wait_for_tokens(out: Path, count: int, proc: subprocess.Popen[str]) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = [p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl")]
        if files:
            records = read_jsonl(files[0]) if files[0].read_text().endswith("\n") else []
            if sum(r["type"] == "token" for r in records) >= count:
                return records
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no tokens within 120 s")


def _qemu_alive(url: str) -> bool:
    port = url.rsplit(":", 1)[1]
    found = subprocess.run(["pgrep", "-f", f"port={port},server=on"], capture_output=True, check=False)
    return found.returncode == 0


def test_ctrl_c_leaves_a_valid_file_ending_with_why(tmp_path: Path, firmware_image: object) -> None:
    proc = subprocess.Popen([*CLI, "run", "--device", "stm32", "--emulate", "--model", "demo",
                             "--repeat", "50", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = _wait_for_tokens(tmp_path, 40, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    records = _records(tmp_path)
    assert records[0]["type"] == "session"
    assert records[-2]["type"] == "error" and records[-2]["kind"] == "interrupted"
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "interrupted"
    assert not _qemu_alive(records[0]["serial_url"])


def test_emulator_dying_mid_run_is_a_disconnect_record(tmp_path: Path, firmware_image: object) -> None:
    proc = subprocess.Popen([*CLI, "run", "--device", "stm32", "--emulate", "--model", "demo",
                             "--repeat", "50", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = _wait_for_tokens(tmp_path, 40, proc)
    port = records[0]["serial_url"].rsplit(":", 1)[1]
    subprocess.run(["pkill", "-KILL", "-f", f"port={port},server=on"], check=True)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 8, stderr
    assert "QEMU exited" in stderr and len(stderr.strip().splitlines()[-1:]) == 1
    records = _records(tmp_path)
    assert records[-2]["type"] == "error" and records[-2]["kind"] == "disconnect"
    assert records[-1]["status"] == "failed" and records[-1]["valid"] is False
    assert records[-1]["decode_tokens_per_s"] is None
