"""Synthetic session files with known distributions, to check the statistics of `compare`.

Emulated runs are deterministic (QEMU -icount), so they cannot show whether a
test tells a real slowdown from noise. These files can: every repetition draws
its decode and prefill rates from a normal distribution with a chosen mean and
coefficient of variation, and the token records are spaced to match. The
repetition and summary figures come from `profiler.measure`, as a run's do;
records are built with the dataclasses of `profiler.records` and written by
the JSONL sink `run` uses, so the schema and the statistics stay one.

    python -m profiler.compare.synthetic OUT_DIR --seed 1 --decode-scale 0.9
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiler import __version__
from profiler.errors import Interrupted, LinkDisconnected, ProfilerError
from profiler.link.protocol import Done, MemorySample, PhaseMark, Token
from profiler.measure import RepetitionEvents, summarise_repetition, summarise_session
from profiler.records import (
    SCHEMA_VERSION,
    ErrorRecord,
    PhaseRecord,
    Record,
    RunSettings,
    SampleRecord,
    SessionHeader,
    TokenRecord,
)
from profiler.sinks.jsonl import JsonlSink

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


def _settings(spec: Synthetic) -> RunSettings:
    return RunSettings(prompt="synthetic", prompt_tokens=tuple(range(1, spec.prompt_tokens + 1)), tokens=spec.tokens,
                       repetitions=spec.repetitions, warmup=spec.warmup, temperature=0.0, seed=spec.seed)


def _records(spec: Synthetic) -> list[Record]:
    rng = np.random.default_rng(spec.seed)
    settings = _settings(spec)
    session_id = f"syn{spec.seed:09d}"
    records: list[Record] = [SessionHeader(
        schema_version=SCHEMA_VERSION, profiler_version=__version__, session_id=session_id,
        started_at="2026-01-01T00:00:00+00:00", device=spec.board, board=spec.board, platform="stm32",
        core="cortex-m4f", clock_hz=168_000_000, timer_hz=TIMER_HZ, firmware_id=spec.firmware_id,
        model=spec.model, model_sha256="0" * 64, model_crc32="00000000", quantization=spec.quantization,
        emulated=False, host="synthetic", prompt=settings.prompt, prompt_tokens=list(settings.prompt_tokens),
        tokens=spec.tokens, repetitions=spec.repetitions, warmup=spec.warmup, temperature=0.0, seed=spec.seed,
        serial_url="synthetic://", emulator=None)]
    memory = {**MEMORY, "arena_used_bytes": MEMORY["arena_used_bytes"] + spec.extra_memory,
              "peak_ram_bytes": MEMORY["peak_ram_bytes"] + spec.extra_memory}
    ticks = 10_000_000
    reps: list[RepetitionEvents] = []
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
        # What the board would have sent; measure turns it into the repetition's figures, as for a real run.
        events = RepetitionEvents(rep, warm, TIMER_HZ, phases={PhaseMark.PREFILL_START: start})
        reference = [100 + i for i in range(spec.tokens)]
        invalid = spec.status == "invalid" and not warm and rep == 0
        for i, stamp in enumerate(stamps.astype(np.int64)):
            token_id = 7 if invalid and i == 3 else reference[i]
            events.tokens.append(Token(rep, i, spec.prompt_tokens - 1 + i, token_id, int(stamp)))
            events.texts.append("x")
            records.append(TokenRecord(repetition=rep, warmup=warm, index=i, position=spec.prompt_tokens - 1 + i,
                                       token_id=token_id, text="x", ticks=int(stamp),
                                       device_ms=events.ms_since_start(int(stamp))))
            if spec.power and i % 4 == 0:
                power = {"power_mw": 120 + 3 * rng.standard_normal()}
                records.append(SampleRecord("power", rep, warm, int(stamp), power))
            if spec.temperature and i % 8 == 0:
                records.append(SampleRecord("temperature", rep, warm, int(stamp), {"temp_c": 40 + index + 0.01 * i}))
        if invalid:
            reference[3] = 9
        end = int(stamps[-1])
        events.memory = MemorySample(rep, end + 1000, **{k: v for k, v in memory.items() if k != "peak_ram_bytes"})
        events.done = Done(rep, spec.tokens, end, 0)
        records.append(SampleRecord("memory", rep, warm, end + 1000, dict(memory)))
        if spec.kernels and not warm and rep == 0:
            records.append(SampleRecord("kernels", rep, warm, end + 1000, dict(spec.kernels), source="exec-log"))
        for name, a, b in (("prefill", start, int(stamps[0])), ("decode", int(stamps[0]), end)):
            records.append(PhaseRecord(name, 0, 0.0, rep, warm, events.ms_between(a, b), a, b))
        events.record = summarise_repetition(events, settings, reference, instructions_per_tick=None)
        records.append(events.record)
        if not warm:
            reps.append(events)
        ticks = end + TIMER_HZ // 100
    records += _closing(spec, settings, reps)
    return records


def _closing(spec: Synthetic, settings: RunSettings, reps: list[RepetitionEvents]) -> list[Record]:
    failure: ProfilerError | None = None
    if spec.status == "interrupted":
        failure = Interrupted("interrupted by the user (Ctrl-C)")
    elif spec.status == "failed":
        failure = LinkDisconnected("board stopped answering")
    closing: list[Record] = []
    if failure is not None:
        kind = "interrupted" if isinstance(failure, Interrupted) else "disconnect"
        closing.append(ErrorRecord(kind, str(failure), "decode", failure.exit_code))
    closing.append(summarise_session(reps, settings, frames_corrupt=0, frames_lost=0, host_ms={}, failure=failure))
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
