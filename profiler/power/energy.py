"""Energy from a meter's samples: windows, sync-marker edges, device-tick alignment, energy per token.

Alignment (docs/power.md): the firmware raises a GPIO wired to a logic input
of the meter when a decode starts and lowers it when the decode ends, and
reports the device ticks of both moments. The meter sees the edges in its
sample stream. Each (ticks, meter time) pair is a point of a straight line
from device ticks to meter time, fitted by least squares over every marker of
the session (`TickMap`), so token timestamps in ticks become meter times and
the energy between two tokens is the integral of the samples between them.

All integrals are trapezoids over the samples, with the power at a window's
ends interpolated linearly between the samples around them; a gap left by
dropped samples is bridged by the straight line between its neighbours.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from profiler.power.base import MeterStats, PowerBatch

MAX_DROP_FRACTION = 0.001  # above this, a run's energy figures are invalid (DESIGN.md)


def _bounds(batch: PowerBatch, t0_s: float | None, t1_s: float | None) -> tuple[float, float]:
    if len(batch) < 2:
        raise ValueError("an energy window needs at least two samples")
    first, last = float(batch.t_s[0]), float(batch.t_s[-1])
    t0 = first if t0_s is None else t0_s
    t1 = last if t1_s is None else t1_s
    if t0 < first or t1 > last or t1 < t0:
        raise ValueError(f"window {t0:.6f}..{t1:.6f} s is not inside the samples' {first:.6f}..{last:.6f} s")
    return t0, t1


def _window_power(batch: PowerBatch, t0: float, t1: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    t, p = batch.t_s, batch.power_w
    i0 = int(np.searchsorted(t, t0, side="right"))
    i1 = int(np.searchsorted(t, t1, side="left"))
    ends = np.interp([t0, t1], t, p)
    times = np.concatenate(([t0], t[i0:i1], [t1]))
    power = np.concatenate(([ends[0]], p[i0:i1], [ends[1]]))
    return times, power


def energy_mj(batch: PowerBatch, t0_s: float | None = None, t1_s: float | None = None) -> float:
    """Energy in mJ over [t0_s, t1_s] on the meter's time base (default: the whole batch)."""
    t0, t1 = _bounds(batch, t0_s, t1_s)
    if t1 == t0:
        return 0.0
    times, power = _window_power(batch, t0, t1)
    return float(np.sum((power[1:] + power[:-1]) * np.diff(times)) * 0.5e3)


def average_power_mw(batch: PowerBatch, t0_s: float | None = None, t1_s: float | None = None) -> float:
    """Mean power in mW over the window: its energy over its duration."""
    t0, t1 = _bounds(batch, t0_s, t1_s)
    if t1 == t0:
        raise ValueError("an empty window has no average power")
    return energy_mj(batch, t0, t1) / (t1 - t0)


def peak_power_mw(batch: PowerBatch, t0_s: float | None = None, t1_s: float | None = None) -> float:
    """Highest power of a sample in the window, in mW."""
    t0, t1 = _bounds(batch, t0_s, t1_s)
    _, power = _window_power(batch, t0, t1)
    return float(power.max()) * 1e3


# -- sync marker -------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncWindow:
    """One high pulse of a sync input: the decode it brackets, on the meter's time base."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Length of the pulse."""
        return self.end_s - self.start_s


def edges(batch: PowerBatch, bit: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Times of the rising and falling edges of logic input `bit`.

    An edge lies between the last sample at the old level and the first at the
    new one; its time is their midpoint (within half a sample period, 5 us at
    100 kS/s, when no sample around it was dropped).
    """
    if not 0 <= bit < 8:
        raise ValueError(f"logic input {bit} is not 0..7")
    level = (batch.logic >> bit) & 1
    change = np.diff(level.astype(np.int8))
    t = batch.t_s
    at = (t[1:] + t[:-1]) * 0.5
    return at[change == 1], at[change == -1]


def sync_windows(batch: PowerBatch, bit: int, min_width_s: float = 0.0) -> list[SyncWindow]:
    """Every complete high pulse of input `bit`, in order; pulses shorter than `min_width_s` are glitches.

    A pulse already high when the samples begin, or still high when they end,
    is incomplete and left out.
    """
    rising, falling = edges(batch, bit)
    windows: list[SyncWindow] = []
    j = 0
    for start in rising:
        j += int(np.searchsorted(falling[j:], start, side="right"))
        if j >= len(falling):
            break
        end = float(falling[j])
        if end - start >= min_width_s:
            windows.append(SyncWindow(float(start), end))
    return windows


# -- device ticks to meter time ---------------------------------------------------------------


@dataclass(frozen=True)
class TickMap:
    """meter_s = origin_s + (ticks - origin_ticks) * seconds_per_tick, fitted to sync markers."""

    origin_ticks: int
    origin_s: float
    seconds_per_tick: float
    max_residual_s: float = 0.0

    @staticmethod
    def fit(ticks: Sequence[int], meter_s: Sequence[float]) -> TickMap:
        """Least-squares line through (device ticks, meter time) marker pairs; at least two, at distinct ticks."""
        if len(ticks) != len(meter_s) or len(ticks) < 2:
            raise ValueError("a tick map needs two or more (ticks, meter time) pairs")
        origin = int(ticks[0])
        x = np.array([int(k) - origin for k in ticks], dtype=np.float64)  # small numbers: no 64-bit precision loss
        y = np.asarray(meter_s, dtype=np.float64)
        xm, ym = x.mean(), y.mean()
        sxx = float(np.sum((x - xm) ** 2))
        if sxx == 0.0:
            raise ValueError("tick map markers are all at the same device tick")
        slope = float(np.sum((x - xm) * (y - ym))) / sxx
        intercept = float(ym - slope * xm)
        residual = float(np.max(np.abs(y - (intercept + slope * x))))
        return TickMap(origin, intercept, slope, residual)

    def meter_s(self, ticks: int | Sequence[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Meter time of device tick(s)."""
        delta = np.asarray(ticks, dtype=np.int64) - self.origin_ticks
        result: npt.NDArray[np.float64] = self.origin_s + delta.astype(np.float64) * self.seconds_per_tick
        return result

    def timer_hz(self) -> float:
        """The device timer rate the meter's clock implies (compare with the rate the board announced)."""
        return 1.0 / self.seconds_per_tick


# -- per token -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenEnergy:
    """Energy of one decode, split by token, with the decode rate's convention.

    Token i >= 1 costs the energy between token i-1 and token i; the first
    token belongs to prefill (`prefill_mj`, from the decode's start marker to
    the first token, when the start is known). `mj_per_token` is the decode
    energy over the decoded tokens, (tokens - 1).
    """

    per_token_mj: tuple[float, ...]
    decode_mj: float
    mj_per_token: float
    avg_power_mw: float
    peak_power_mw: float
    prefill_mj: float | None = None


def energy_per_token(batch: PowerBatch, token_s: Sequence[float] | npt.NDArray[np.float64],
                     start_s: float | None = None) -> TokenEnergy:
    """Energy of each decoded token from token times on the meter's time base (`TickMap.meter_s`)."""
    times = np.asarray(token_s, dtype=np.float64)
    if len(times) < 2:
        raise ValueError("energy per token needs two or more token times")
    if np.any(np.diff(times) <= 0):
        raise ValueError("token times must increase")
    _bounds(batch, float(times[0]), float(times[-1]))
    per_token = tuple(energy_mj(batch, float(a), float(b)) for a, b in itertools.pairwise(times))
    decode = float(sum(per_token))
    duration = float(times[-1] - times[0])
    prefill = None if start_s is None else energy_mj(batch, start_s, float(times[0]))
    return TokenEnergy(
        per_token_mj=per_token,
        decode_mj=decode,
        mj_per_token=decode / (len(times) - 1),
        avg_power_mw=decode / duration,
        peak_power_mw=peak_power_mw(batch, float(times[0]), float(times[-1])),
        prefill_mj=prefill,
    )


def drop_reason(stats: MeterStats, limit: float = MAX_DROP_FRACTION) -> str | None:
    """Why a run's energy is invalid because of lost samples, or None when the losses are within `limit`."""
    if stats.drop_fraction <= limit:
        return None
    return (f"power meter lost {stats.dropped:,} of {stats.received + stats.lost_in_transfer:,} samples "
            f"({stats.drop_fraction:.3%} > {limit:.1%}): {stats.lost_in_transfer:,} in transfer, "
            f"{stats.lost_in_host:,} in the host buffer")
