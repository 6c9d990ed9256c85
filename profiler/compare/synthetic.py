"""Synthetic session files with known distributions, to check the statistics of `compare`.

Emulated runs are deterministic (QEMU -icount), so they cannot show whether a
test tells a real slowdown from noise. These files can: every repetition draws
its decode and prefill rates from a normal distribution with a chosen mean and
coefficient of variation, and the token records are spaced to match. Records
are built with the dataclasses of `profiler.records` and written by the JSONL
sink `run` uses, so the schema stays one.

    python -m profiler.compare.synthetic OUT_DIR --seed 1 --decode-scale 0.9
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from profiler import __version__
from profiler.records import (
    SCHEMA_VERSION,
    ErrorRecord,
    PhaseRecord,
    Record,
    RepetitionRecord,
    SampleRecord,
    SessionHeader,
    SummaryRecord,
    TokenRecord,
)
from profiler.sinks.jsonl import JsonlSink
from profiler.stats import median, percentile, stddev

TIMER_HZ = 168_000_000
MEMORY = {"static_ram_bytes": 2072, "arena_used_bytes": 88616, "stack_peak_bytes": 752,
          "stack_total_bytes": 8192, "kv_cache_bytes": 81920, "peak_ram_bytes": 91440}


@dataclass(frozen=True)
class Synthetic:
    """The distribution a synthetic session is drawn from."""

    seed: int = 0
    decode_tps: float = 60.0
    prefill_tps: float = 80.0
    cv: float = 0.03  # coefficient of variation of a repetition's rates
    decode_scale: float = 1.0  # 0.9 = a 10% decode slowdown
    repetitions: int = 5
    warmup: int = 1
    tokens: int = 16
    prompt_tokens: int = 8
    board: str = "stm32f405"
    model: str = "demo"
    quantization: str = "int8"
    firmware_id: str = "stm32f4-synthetic"
    status: str = "ok"  # ok, invalid, failed or interrupted
    power: bool = False  # add `power` samples (power_mw)
    temperature: bool = False  # add `temperature` samples (temp_c)
    extra_memory: int = 0  # bytes added to the arena, for a memory regression
    kernels: dict[str, float] | None = None  # a `kernels` sample: instructions per decode step by part


def _records(spec: Synthetic) -> list[Record]:
    rng = np.random.default_rng(spec.seed)
    session_id = f"syn{spec.seed:09d}"
    records: list[Record] = [SessionHeader(
        schema_version=SCHEMA_VERSION, profiler_version=__version__, session_id=session_id,
        started_at="2026-01-01T00:00:00+00:00", device=spec.board, board=spec.board, platform="stm32",
        core="cortex-m4f", clock_hz=168_000_000, timer_hz=TIMER_HZ, firmware_id=spec.firmware_id,
        model=spec.model, model_sha256="0" * 64, model_crc32="00000000", quantization=spec.quantization,
        emulated=False, host="synthetic", prompt="synthetic", prompt_tokens=list(range(1, spec.prompt_tokens + 1)),
        tokens=spec.tokens, repetitions=spec.repetitions, warmup=spec.warmup, temperature=0.0, seed=spec.seed,
        serial_url="synthetic://", emulator=None)]
    memory = {**MEMORY, "arena_used_bytes": MEMORY["arena_used_bytes"] + spec.extra_memory,
              "peak_ram_bytes": MEMORY["peak_ram_bytes"] + spec.extra_memory}
    ticks = 10_000_000
    reps: list[RepetitionRecord] = []
    stop = spec.repetitions // 2 if spec.status in ("failed", "interrupted") else None
    for index in range(spec.warmup + spec.repetitions):
        warm = index < spec.warmup
        rep = index if warm else index - spec.warmup
        if stop is not None and not warm and rep == stop:
            break
        decode = spec.decode_tps * spec.decode_scale * max(0.2, 1 + spec.cv * rng.standard_normal())
        prefill = spec.prefill_tps * max(0.2, 1 + spec.cv * rng.standard_normal())
        ttft_ms = spec.prompt_tokens / prefill * 1e3
        weights = np.clip(1 + 0.1 * rng.standard_normal(spec.tokens - 1), 0.5, None)
        steps_ms = weights / weights.mean() / decode * 1e3
        start = ticks
        stamps = start + np.round(np.concatenate([[ttft_ms], ttft_ms + np.cumsum(steps_ms)]) * TIMER_HZ / 1e3)
        for i, stamp in enumerate(stamps.astype(np.int64)):
            records.append(TokenRecord(repetition=rep, warmup=warm, index=i, position=spec.prompt_tokens - 1 + i,
                                       token_id=100 + i, text="x", ticks=int(stamp),
                                       device_ms=(int(stamp) - start) * 1e3 / TIMER_HZ))
            if spec.power and i % 4 == 0:
                power = {"power_mw": 120 + 3 * rng.standard_normal()}
                records.append(SampleRecord("power", rep, warm, int(stamp), power))
            if spec.temperature and i % 8 == 0:
                records.append(SampleRecord("temperature", rep, warm, int(stamp), {"temp_c": 40 + index + 0.01 * i}))
        end = int(stamps[-1])
        records.append(SampleRecord("memory", rep, warm, end + 1000, dict(memory)))
        if spec.kernels and not warm and rep == 0:
            records.append(SampleRecord("kernels", rep, warm, end + 1000, dict(spec.kernels), source="exec-log"))
        for name, a, b in (("prefill", start, int(stamps[0])), ("decode", int(stamps[0]), end)):
            records.append(PhaseRecord(name, 0, 0.0, rep, warm, (b - a) * 1e3 / TIMER_HZ, a, b))
        steps = np.diff(stamps) * 1e3 / TIMER_HZ
        invalid = spec.status == "invalid" and not warm and rep == 0
        record = RepetitionRecord(
            repetition=rep, warmup=warm, prompt_tokens=spec.prompt_tokens, tokens_generated=spec.tokens,
            ttft_ms=(int(stamps[0]) - start) * 1e3 / TIMER_HZ, prefill_tokens_per_s=prefill,
            decode_tokens_per_s=(spec.tokens - 1) / ((end - int(stamps[0])) / TIMER_HZ),
            token_latency_ms_p50=percentile(list(steps), 50), token_latency_ms_p95=percentile(list(steps), 95),
            device_ms=(end - start) * 1e3 / TIMER_HZ, decode_instructions_per_token=None,
            matches_reference=not invalid, valid=not invalid,
            reasons=["token 3 is 7 on the board but 9 in the host reference"] if invalid else [],
            text="x" * spec.tokens)
        records.append(record)
        if not warm:
            reps.append(record)
        ticks = end + TIMER_HZ // 100
    records += _closing(spec, reps, memory)
    return records


def _closing(spec: Synthetic, reps: list[RepetitionRecord], memory: dict[str, int]) -> list[Record]:
    closing: list[Record] = []
    reasons = [f"repetition {r.repetition}: {why}" for r in reps for why in r.reasons]
    status = spec.status
    if status in ("failed", "interrupted"):
        kind = "interrupted" if status == "interrupted" else "disconnect"
        message = "interrupted by the user (Ctrl-C)" if kind == "interrupted" else "board stopped answering"
        closing.append(ErrorRecord(kind, message, "decode", 130 if kind == "interrupted" else 8))
        reasons.insert(0, message)
    valid = status == "ok"
    decode = [r.decode_tokens_per_s for r in reps if r.decode_tokens_per_s is not None]
    summary = SummaryRecord(status=status, valid=valid, reasons=reasons, repetitions=len(reps),
                            tokens_generated=sum(r.tokens_generated for r in reps), text=reps[0].text if reps else "")
    if valid:
        summary = replace(
            summary, decode_tokens_per_s=median(decode), decode_tokens_per_s_min=min(decode),
            decode_tokens_per_s_max=max(decode), decode_tokens_per_s_stddev=stddev(decode),
            prefill_tokens_per_s=median([r.prefill_tokens_per_s for r in reps]),
            ttft_ms=median([r.ttft_ms for r in reps]),
            token_latency_ms_p50=median([r.token_latency_ms_p50 for r in reps if r.token_latency_ms_p50 is not None]),
            token_latency_ms_p95=median([r.token_latency_ms_p95 for r in reps if r.token_latency_ms_p95 is not None]),
            peak_ram_bytes=memory["peak_ram_bytes"],
            static_ram_bytes=memory["static_ram_bytes"], arena_used_bytes=memory["arena_used_bytes"],
            stack_peak_bytes=memory["stack_peak_bytes"], kv_cache_bytes=memory["kv_cache_bytes"],
            reference_match=True, device_ms=sum(r.device_ms for r in reps))
    closing.append(summary)
    return closing


def write_synthetic(out: Path, spec: Synthetic, name: str | None = None) -> Path:
    """Write one synthetic session file into directory `out`; returns its path."""
    path = out / f"{name or f'synthetic-{spec.board}-{spec.model}-{spec.seed}'}.jsonl"
    sink = JsonlSink(path)
    try:
        for record in _records(spec):
            sink.emit(record)
    finally:
        sink.close()
    return path


def main(argv: list[str] | None = None) -> None:
    """Write one synthetic session: `python -m profiler.compare.synthetic OUT_DIR [options]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decode-scale", type=float, default=1.0, help="0.9 = a 10%% decode slowdown")
    parser.add_argument("--cv", type=float, default=0.03, help="coefficient of variation of the rates")
    parser.add_argument("--status", default="ok", choices=["ok", "invalid", "failed", "interrupted"])
    parser.add_argument("--power", action="store_true")
    parser.add_argument("--temperature", action="store_true")
    parser.add_argument("--name")
    args = parser.parse_args(argv)
    spec = Synthetic(seed=args.seed, decode_scale=args.decode_scale, cv=args.cv, status=args.status,
                     power=args.power, temperature=args.temperature)
    print(write_synthetic(args.out, spec, args.name))


if __name__ == "__main__":
    main()
