"""Figures from device ticks, and the validity rules that guard them.

Every time here is device time: ticks divided by the timer rate the board
announced. Host arrival times never enter a rate. A rule that is broken makes
the repetition (and the session) invalid with a reason, instead of a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from profiler.errors import Interrupted, ProfilerError
from profiler.link.protocol import Done, MemorySample, PhaseMark, Token
from profiler.records import RepetitionRecord, RunSettings, SummaryRecord
from profiler.stats import median, percentile, stddev

MIN_VALID_REPETITIONS = 5


@dataclass
class RepetitionEvents:
    """What the board sent during one repetition."""

    rep: int
    warmup: bool
    timer_hz: int
    phases: dict[PhaseMark, int] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    memory: MemorySample | None = None
    done: Done | None = None
    frames_missing: int = 0
    utilization: float | None = None  # share of decode ticks the CPU computed (CPU frames), if reported
    device_telemetry: list[Any] = field(default_factory=list)  # CPU, TEMP and POWER frames, in order
    record: RepetitionRecord | None = None

    def ms_between(self, start_ticks: int, end_ticks: int) -> float:
        """Device milliseconds between two tick stamps."""
        return (end_ticks - start_ticks) * 1e3 / self.timer_hz

    def ms_since_start(self, ticks: int) -> float:
        """Device milliseconds since this repetition's prefill started."""
        start = self.phases.get(PhaseMark.PREFILL_START, ticks)
        return self.ms_between(start, ticks)


def _check(events: RepetitionEvents, settings: RunSettings, reference: Sequence[int]) -> list[str]:
    reasons: list[str] = []
    if events.timer_hz <= 0:
        reasons.append("board announced a timer rate of 0 Hz")
    if len(events.tokens) != settings.tokens:
        reasons.append(f"board sent {len(events.tokens)} of {settings.tokens} tokens")
    if PhaseMark.PREFILL_START not in events.phases:
        reasons.append("prefill_start marker missing")
    stamps = [events.phases.get(PhaseMark.PREFILL_START, 0)] + [t.ticks for t in events.tokens]
    for i in range(1, len(stamps)):
        if stamps[i] <= stamps[i - 1]:
            what = "prefill start" if i == 1 else f"token {i - 2}"
            reasons.append(
                f"timer did not advance between {what} and token {i - 1} (ticks {stamps[i - 1]} -> {stamps[i]})"
            )
            break
    if events.frames_missing:
        reasons.append(f"{events.frames_missing} frames lost or corrupt during the repetition")
    device = [t.token_id for t in events.tokens]
    if device != list(reference):
        for i, (got, want) in enumerate(zip(device, reference, strict=False)):
            if got != want:
                reasons.append(f"token {i} is {got} on the board but {want} in the host reference")
                break
        else:
            reasons.append("board output length differs from the host reference")
    return reasons


def summarise_repetition(
    events: RepetitionEvents,
    settings: RunSettings,
    reference: Sequence[int],
    instructions_per_tick: float | None,
) -> RepetitionRecord:
    """Per-repetition figures; decode excludes the first token (it belongs to prefill)."""
    reasons = _check(events, settings, reference)
    ticks = [t.ticks for t in events.tokens]
    start = events.phases.get(PhaseMark.PREFILL_START)
    ttft_ms = events.ms_between(start, ticks[0]) if start is not None and ticks else float("nan")
    decode_rate: float | None = None
    latencies: list[float] = []
    ipt: float | None = None
    if len(ticks) >= 2 and ticks[-1] > ticks[0]:
        decode_ms = events.ms_between(ticks[0], ticks[-1])
        decode_rate = (len(ticks) - 1) / (decode_ms / 1e3)
        latencies = [events.ms_between(a, b) for a, b in pairwise(ticks)]
        if instructions_per_tick is not None:
            ipt = (ticks[-1] - ticks[0]) * instructions_per_tick / (len(ticks) - 1)
    end = events.done.ticks if events.done else (ticks[-1] if ticks else start)
    return RepetitionRecord(
        repetition=events.rep,
        warmup=events.warmup,
        prompt_tokens=len(settings.prompt_tokens),
        tokens_generated=len(ticks),
        ttft_ms=ttft_ms,
        prefill_tokens_per_s=len(settings.prompt_tokens) / (ttft_ms / 1e3) if ttft_ms > 0 else float("nan"),
        decode_tokens_per_s=decode_rate,
        token_latency_ms_p50=percentile(latencies, 50),
        token_latency_ms_p95=percentile(latencies, 95),
        device_ms=events.ms_between(start, end) if start is not None and end is not None else float("nan"),
        decode_instructions_per_token=ipt,
        matches_reference=[t.token_id for t in events.tokens] == list(reference),
        valid=not reasons,
        reasons=reasons,
        text="".join(events.texts),
    )


def summarise_session(
    reps: Sequence[RepetitionEvents],
    settings: RunSettings,
    frames_corrupt: int,
    frames_lost: int,
    host_ms: dict[str, float],
    failure: ProfilerError | None,
) -> SummaryRecord:
    """The session's last record: medians over measured repetitions, or why there are none."""
    records = [r.record for r in reps if r.record is not None]
    reasons = [f"repetition {r.repetition}: {why}" for r in records for why in r.reasons]
    if failure is None and len(records) < MIN_VALID_REPETITIONS:
        reasons.append(f"{len(records)} repetitions measured; {MIN_VALID_REPETITIONS} is the minimum for a valid run")
    if failure is not None:
        reasons.insert(0, str(failure))
    valid = failure is None and not reasons
    if isinstance(failure, Interrupted):
        status = "interrupted"
    elif failure is not None:
        status = "failed"
    else:
        status = "ok" if valid else "invalid"
    good = [r for r in records if r.valid]
    decode = [r.decode_tokens_per_s for r in good if r.decode_tokens_per_s is not None]
    # One percentile definition everywhere (docs/jsonl.md): NumPy's linear percentile of each repetition's
    # decode steps, then the median over repetitions, like every other figure here and in `compare`.
    p50 = [r.token_latency_ms_p50 for r in good if r.token_latency_ms_p50 is not None]
    p95 = [r.token_latency_ms_p95 for r in good if r.token_latency_ms_p95 is not None]
    memory = [r.memory for r in reps if r.memory is not None]
    peak = max(memory, key=lambda m: m.static_ram_bytes + m.arena_used_bytes + m.stack_peak_bytes, default=None)
    ipt = [r.decode_instructions_per_token for r in good if r.decode_instructions_per_token is not None]
    return SummaryRecord(
        status=status,
        valid=valid,
        reasons=reasons,
        repetitions=len(records),
        tokens_generated=sum(r.tokens_generated for r in records),
        decode_tokens_per_s=median(decode) if valid else None,
        decode_tokens_per_s_min=min(decode) if decode and valid else None,
        decode_tokens_per_s_max=max(decode) if decode and valid else None,
        decode_tokens_per_s_stddev=stddev(decode) if valid else None,
        prefill_tokens_per_s=median([r.prefill_tokens_per_s for r in good]) if valid else None,
        ttft_ms=median([r.ttft_ms for r in good]) if valid else None,
        token_latency_ms_p50=median(p50) if valid else None,
        token_latency_ms_p95=median(p95) if valid else None,
        peak_ram_bytes=(peak.static_ram_bytes + peak.arena_used_bytes + peak.stack_peak_bytes) if peak else None,
        static_ram_bytes=peak.static_ram_bytes if peak else None,
        arena_used_bytes=peak.arena_used_bytes if peak else None,
        stack_peak_bytes=peak.stack_peak_bytes if peak else None,
        kv_cache_bytes=peak.kv_cache_bytes if peak else None,
        decode_instructions_per_token=sum(ipt) / len(ipt) if ipt and valid else None,
        reference_match=all(r.matches_reference for r in records) if records else None,
        frames_corrupt=frames_corrupt,
        frames_lost=frames_lost,
        host_ms={k: round(v, 3) for k, v in host_ms.items()},
        device_ms=sum(r.device_ms for r in records) if records else None,
        text=records[0].text if records else "",
    )
