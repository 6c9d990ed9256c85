"""The statistics of `compare`: metrics and their directions, bootstrap intervals, a rank test.

Every figure is taken over per-repetition samples (warmup and invalid
repetitions left out). The rank test is a two-sided Mann-Whitney U: exact for
small samples (every split of the pooled mid-ranks is enumerated, so ties are
handled exactly), and the normal approximation with tie and continuity
corrections beyond that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

EXACT_LIMIT = 20_000  # splits enumerated at most; C(10, 5) = 252, C(16, 8) = 12,870
BOOTSTRAP_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0  # fixed so the same files always print the same interval


@dataclass(frozen=True)
class Metric:
    """One row of the comparison: where its per-repetition samples come from and which way is better."""

    key: str
    label: str  # without the unit: `name` adds it once
    unit: str  # "" for a count
    higher_is_better: bool
    digits: int
    sample_kind: str | None = None  # else derived per repetition from `sample` records of this kind
    sample_keys: tuple[str, ...] = ()
    reduce: str = "max"

    @property
    def name(self) -> str:
        """The label with its unit, once: `decode rate (tok/s)`."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def direction(self) -> str:
        """`higher` or `lower` (is better)."""
        return "higher" if self.higher_is_better else "lower"

    def format(self, value: float | None) -> str:
        """The value with this metric's precision, or `-` when absent."""
        if value is None or not math.isfinite(value):
            return "-"
        return f"{value:,.{self.digits}f}"


METRICS: tuple[Metric, ...] = (
    Metric("decode_tokens_per_s", "decode rate", "tok/s", True, 2),
    Metric("prefill_tokens_per_s", "prefill rate", "tok/s", True, 2),
    Metric("ttft_ms", "time to first token", "ms", False, 3),
    Metric("token_latency_ms_p50", "token latency p50", "ms", False, 3),
    Metric("token_latency_ms_p95", "token latency p95", "ms", False, 3),
    Metric("peak_ram_bytes", "peak RAM", "bytes", False, 0, "memory", ("peak_ram_bytes",), "max"),
    Metric("decode_instructions_per_token", "instructions per decoded token", "", False, 0),
    Metric("energy_mj_per_token", "energy per token", "mJ", False, 3),
    Metric("avg_power_mw", "average power", "mW", False, 1, "power", ("power_mw", "avg_power_mw", "mw"), "mean"),
    Metric("max_temp_c", "max temperature", "°C", False, 1, "temperature",
           ("temp_c", "temperature_c", "max_temp_c", "celsius"), "max"),
)


def _sample_value(metric: Metric, values: dict[str, Any]) -> float | None:
    for key in metric.sample_keys:
        if isinstance(values.get(key), (int, float)):
            return float(values[key])
    numeric = [v for v in values.values() if isinstance(v, (int, float))]
    return float(numeric[0]) if len(numeric) == 1 else None


def repetition_samples(metric: Metric, repetitions: Sequence[dict[str, Any]],
                       samples: Sequence[dict[str, Any]]) -> list[float]:
    """One value per measured repetition: its record's field, or else reduced from its telemetry samples."""
    out: list[float] = []
    for rep in repetitions:
        value = rep.get(metric.key)
        if value is None and metric.sample_kind is not None:
            found = [_sample_value(metric, s.get("values") or {}) for s in samples
                     if s.get("kind") == metric.sample_kind and s.get("repetition") == rep.get("repetition")
                     and not s.get("warmup")]
            found_values = [v for v in found if v is not None]
            if found_values:
                value = max(found_values) if metric.reduce == "max" else float(np.mean(found_values))
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append(float(value))
    return out


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the median."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1 or np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return (float(low), float(high))


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, values.size + 1):
        if end == values.size or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2
            start = end
    return ranks


@dataclass(frozen=True)
class RankTest:
    """A two-sided Mann-Whitney U test of `x` against `y`."""

    u: float
    p_value: float
    method: str  # "exact" or "normal"
    n_x: int
    n_y: int


def mann_whitney_u(x: Sequence[float], y: Sequence[float], exact_limit: int = EXACT_LIMIT) -> RankTest:
    """Two-sided Mann-Whitney U; exact (ties included) when there are at most `exact_limit` splits."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    n = n1 + n2
    ranks = midranks(np.concatenate([a, b]))
    rank_sum = float(ranks[:n1].sum())
    u = rank_sum - n1 * (n1 + 1) / 2
    center = n1 * (n + 1) / 2
    if math.comb(n, n1) <= exact_limit:
        splits = np.array(list(combinations(range(n), n1)), dtype=np.intp)
        sums = ranks[splits].sum(axis=1)
        observed = abs(rank_sum - center)
        p = float(np.mean(np.abs(sums - center) >= observed - 1e-9))
        return RankTest(u, min(1.0, p), "exact", n1, n2)
    _, counts = np.unique(ranks, return_counts=True)
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return RankTest(u, 1.0, "normal", n1, n2)
    z = max(0.0, abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return RankTest(u, min(1.0, math.erfc(z / math.sqrt(2))), "normal", n1, n2)
