"""Baseline figures of the firmware on the emulated board (`make bench`).

Prints figures, never pass/fail. Derivation (also in the README):
- instructions per decoded token: QEMU runs with -icount shift=S, one
  instruction per 2**S ns of virtual time, and the board's timer counts virtual
  time, so instructions = ticks / timer_hz * 1e9 / 2**S, averaged over the
  decode tokens of every measured repetition;
- MACs per token: weight multiply-accumulates of one forward pass (all seven
  matrices per layer plus the classifier) and the attention MACs (q.k and
  att.v) averaged over the decoded positions;
- decode tokens/s predicted by the board's cycle model (profiler/cycles), and
  at the board clock: clock_hz / instructions per token, i.e.
  one instruction per cycle, an upper bound for a Cortex-M4 running from flash;
- host time beyond device time: wall time of the host phases outside the
  repetitions (QEMU start, connect, model check, teardown), each listed, plus
  the reference pass; and the emulation speed, device seconds of decode per
  host second (above 1: QEMU runs faster than the modelled board).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from profiler.api import RunOptions, open_model, plan_run, resolve_model_path
from profiler.models.format import ModelConfig
from profiler.sinks.jsonl import read_jsonl

TOKENS = 32
REPEAT = 5


def macs_per_token(cfg: ModelConfig, positions: range) -> tuple[int, float]:
    """(weight MACs per token, mean attention MACs over `positions`)."""
    kv_dim = cfg.dim * cfg.n_kv_heads // cfg.n_heads
    per_layer = 2 * cfg.dim * cfg.dim + 2 * kv_dim * cfg.dim + 3 * cfg.dim * cfg.hidden_dim
    weights = cfg.n_layers * per_layer + cfg.vocab_size * cfg.dim
    attention = [cfg.n_layers * cfg.n_heads * cfg.head_size * 2 * (pos + 1) for pos in positions]
    return weights, sum(attention) / len(attention)


def main() -> int:
    console = Console()
    model_path = resolve_model_path("demo")
    model, _handle = open_model(model_path)
    with tempfile.TemporaryDirectory() as out:
        session, path = plan_run(RunOptions(device="stm32", model="demo", tokens=TOKENS, repeat=REPEAT,
                                            warmup=1, out=Path(out), emulate=True, predict=True))
        summary = session.run()
        records = read_jsonl(path)
    header = records[0]
    n_prompt = len(header["prompt_tokens"])
    weights, attention = macs_per_token(model.config, range(n_prompt, n_prompt + TOKENS - 1))
    ipt = summary.decode_instructions_per_token or float("nan")
    macs = weights + attention
    reps = [r for r in records if r["type"] == "repetition" and not r["warmup"]]
    decode_phases = [p for p in records if p["type"] == "phase" and p["name"] == "decode" and not p["warmup"]]
    host_decode_ms = sum(p["host_ms"] for p in decode_phases)
    device_decode_ms = sum(p["device_ms"] for p in decode_phases)
    outside = {k: v for k, v in summary.host_ms.items() if k not in ("warmup", "reference")}
    figures = {
        "board": header["board"],
        "firmware_id": header["firmware_id"],
        "icount_shift": header["emulator"]["icount_shift"],
        "instructions_per_decoded_token": ipt,
        "weight_macs_per_token": weights,
        "attention_macs_per_token_mean": attention,
        "instructions_per_mac": ipt / macs,
        "decode_tokens_per_s_predicted": summary.predicted_decode_tokens_per_s,
        "cycle_model": summary.cycle_model,
        "predicted_cycles_per_decoded_token": summary.predicted_cycles_per_token,
        "predicted_cycles_per_mac": (summary.predicted_cycles_per_token or float("nan")) / macs,
        "decode_tokens_per_s_at_clock_1ipc": header["clock_hz"] / ipt,
        "decode_tokens_per_s_emulator_timer": summary.decode_tokens_per_s,
        "ttft_ms_device": summary.ttft_ms,
        "valid": summary.valid,
        "host_ms_outside_repetitions": sum(outside.values()),
        "host_ms_per_phase": summary.host_ms,
        "emulation_speed_device_s_per_host_s": device_decode_ms / host_decode_ms if host_decode_ms else None,
        "repetitions": len(reps),
        "predicted_cycles_by_part": summary.predicted_cycles_per_token_by_part or {},
    }
    table = Table(title=f"emulated {header['board']} · demo model · firmware {header['firmware_id']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if isinstance(value, float):
            value = f"{value:,.3f}"
        elif isinstance(value, dict) and key == "predicted_cycles_by_part":
            value = ", ".join(f"{k} {v:,.0f}" for k, v in value.items())
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v:,.1f}" for k, v in value.items())
        table.add_row(key, str(value))
    console.print(table)
    print(json.dumps(figures))
    return 0 if summary.valid else 1


if __name__ == "__main__":
    sys.exit(main())
