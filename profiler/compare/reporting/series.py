"""Series the figures draw, read from one session's records: steps by position, energy by token, telemetry.

Every time is device time (ticks over the `timer_hz` the board announced),
in seconds since the session's first device tick unless said otherwise.
Only measured repetitions (not warmup, valid) enter the latency and energy
series; timelines show warmup too, shaded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from profiler.compare.load import SessionFile


@dataclass
class RepetitionSteps:
    """One measured repetition: its prefill and every decode step at its context position."""

    repetition: int
    prompt_tokens: int
    ttft_ms: float
    positions: list[int] = field(default_factory=list)  # context position of each decode step
    latency_ms: list[float] = field(default_factory=list)

    @property
    def prefill_ms_per_token(self) -> float:
        """Time to first token over the prompt tokens it processed."""
        return self.ttft_ms / max(self.prompt_tokens, 1)


def _tokens_by_repetition(session: SessionFile) -> dict[int, list[dict[str, Any]]]:
    measured = {r.get("repetition") for r in session.measured_repetitions()}
    by_rep: dict[int, list[dict[str, Any]]] = {}
    for token in session.of_type("token"):
        if not token.get("warmup") and token.get("repetition") in measured:
            by_rep.setdefault(int(token["repetition"]), []).append(token)
    return {rep: sorted(tokens, key=lambda t: t["index"]) for rep, tokens in sorted(by_rep.items())}


def steps_by_position(session: SessionFile) -> list[RepetitionSteps]:
    """Prefill and decode steps of each measured repetition (device time)."""
    timer_hz = float(session.header.get("timer_hz") or 0)
    if timer_hz <= 0:
        return []
    records = {r.get("repetition"): r for r in session.measured_repetitions()}
    out = []
    for rep, tokens in _tokens_by_repetition(session).items():
        record = records[rep]
        steps = RepetitionSteps(rep, int(record.get("prompt_tokens") or 0), float(record.get("ttft_ms") or 0))
        for before, token in itertools.pairwise(tokens):
            steps.positions.append(int(token["position"]))
            steps.latency_ms.append((token["ticks"] - before["ticks"]) * 1e3 / timer_hz)
        out.append(steps)
    return out


def token_latencies(session: SessionFile) -> list[float]:
    """Per-token decode latencies (ms, device time) of a session's measured, valid repetitions."""
    return [v for steps in steps_by_position(session) for v in steps.latency_ms]


@dataclass(frozen=True)
class Slope:
    """Least-squares line of decode step latency against context position."""

    ms_per_position: float
    intercept_ms: float
    instructions_per_position: float | None  # emulated boards: from the -icount rule


def fitted_slope(session: SessionFile, steps: list[RepetitionSteps]) -> Slope | None:
    """The per-position growth of decode latency over every measured step, or None for fewer than 2 positions."""
    x = np.array([p for s in steps for p in s.positions], dtype=np.float64)
    y = np.array([v for s in steps for v in s.latency_ms], dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    emulator = session.header.get("emulator") or {}
    shift = emulator.get("icount_shift")
    # -icount shift=N: one instruction per 2**N ns of virtual time (README, "The emulated board").
    instructions = float(slope) * 1e6 / 2 ** int(shift) if isinstance(shift, int) else None
    return Slope(float(slope), float(intercept), instructions)


@dataclass
class TokenEnergySeries:
    """One repetition's tokens on the device timeline with their energy, and its phases."""

    repetition: int
    token_s: list[float] = field(default_factory=list)  # device seconds since the repetition's prefill start
    energy_mj: list[float | None] = field(default_factory=list)
    mj_per_token: float | None = None  # the repetition record's energy per decoded token
    prefill_s: tuple[float, float] = (0.0, 0.0)
    decode_s: tuple[float, float] = (0.0, 0.0)
    power_s: list[float] = field(default_factory=list)
    power_mw: list[float] = field(default_factory=list)


def _phase(session: SessionFile, name: str, rep: int) -> dict[str, Any] | None:
    """The measured repetition's phase record of that name, if the session has one."""
    return next((p for p in session.of_type("phase") if p.get("name") == name and p.get("repetition") == rep
                 and not p.get("warmup")), None)


def _phase_span(phase: dict[str, Any] | None, origin: int, timer_hz: float) -> tuple[float, float]:
    start, end = (phase.get("start_ticks"), phase.get("end_ticks")) if phase else (None, None)
    if isinstance(start, int) and isinstance(end, int):
        return ((start - origin) / timer_hz, (end - origin) / timer_hz)
    return (0.0, 0.0)


def energy_series(session: SessionFile, repetition: int | None = None) -> TokenEnergySeries | None:
    """The first measured repetition (or `repetition`) with per-token energy and power; None without energy."""
    timer_hz = float(session.header.get("timer_hz") or 0)
    by_rep = _tokens_by_repetition(session)
    if timer_hz <= 0 or not by_rep:
        return None
    rep = repetition if repetition is not None else next(iter(by_rep))
    tokens = by_rep.get(rep, [])
    if not any(isinstance(t.get("energy_mj"), (int, float)) for t in tokens):
        return None
    prefill = _phase(session, "prefill", rep)
    origin = int(prefill["start_ticks"]) if prefill and isinstance(prefill.get("start_ticks"), int) \
        else int(tokens[0]["ticks"])
    series = TokenEnergySeries(rep)
    series.token_s = [(t["ticks"] - origin) / timer_hz for t in tokens]
    series.energy_mj = [t.get("energy_mj") for t in tokens]
    record = next((r for r in session.measured_repetitions() if r.get("repetition") == rep), {})
    series.mj_per_token = record.get("energy_mj_per_token")
    series.prefill_s = _phase_span(prefill, origin, timer_hz)
    series.decode_s = _phase_span(_phase(session, "decode", rep), origin, timer_hz)
    for sample in session.of_type("sample"):
        if sample.get("kind") == "power" and sample.get("repetition") == rep and not sample.get("warmup"):
            value = (sample.get("values") or {}).get("power_mw")
            if isinstance(value, (int, float)):
                series.power_s.append((sample["ticks"] - origin) / timer_hz)
                series.power_mw.append(float(value))
    return series


def device_origin(session: SessionFile) -> int:
    """The session's first device tick: time 0 of its timelines."""
    ticks = [r["ticks"] for r in session.records if isinstance(r.get("ticks"), int)]
    ticks += [r["start_ticks"] for r in session.of_type("phase") if isinstance(r.get("start_ticks"), int)]
    return min(ticks) if ticks else 0
