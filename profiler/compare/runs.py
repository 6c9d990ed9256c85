"""`tiny-profiler compare`: statistics per metric and run, deltas to a baseline, a regression gate.

Rows are metrics, columns are runs (see `compare.load` for how files become
columns). Each cell holds the median, the standard deviation and a 95%
bootstrap interval of the median over per-repetition samples. Each run that is
not a baseline is set against the baseline of its own board/model/quantization
group with a relative delta and a two-sided Mann-Whitney U test. A run of
another board, model or quantization is shown beside the others, marked *not
comparable*, and never gated. A metric *regresses* when it is worse than the
threshold in its own direction **and** the test says the difference is
significant, so noise alone never fails the gate. A change within
`UNCHANGED_RELATIVE` of the baseline (float noise) is *unchanged*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from profiler.compare.load import GROUP_FIELDS, Column, Excluded, load_columns
from profiler.compare.reporting.labels import assign_labels
from profiler.compare.stats import METRICS, Metric, bootstrap_ci, mann_whitney_u, repetition_samples
from profiler.errors import ConfigError

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
UNCHANGED_RELATIVE = 1e-9  # |run - baseline| within this share of the baseline is float noise, not a change


def parse_threshold(text: str) -> float:
    """`5%`, `5` or `2.5%` -> a fraction (0.05, 0.05, 0.025). A bare number is in percent."""
    raw = text.strip().removesuffix("%").strip()
    try:
        value = float(raw) / 100
    except ValueError:
        raise ConfigError(f"--threshold {text!r} is not a percentage; write it like 5%") from None
    if not 0 <= value < 10 or not math.isfinite(value):
        raise ConfigError(f"--threshold {text!r} is out of range; use a percentage such as 5%")
    return value


@dataclass(frozen=True)
class Verdict:
    """One metric of one run set against its baseline."""

    metric: Metric
    column: str
    baseline: str
    delta: float | None  # relative change of the median, (run - baseline) / baseline
    p_value: float | None
    method: str | None
    worse: bool
    significant: bool
    regression: bool
    reason: str
    unchanged: bool = False  # within UNCHANGED_RELATIVE of the baseline


@dataclass
class Comparison:
    """Everything `compare` prints: the columns, their statistics, the verdicts and what was left out."""

    columns: list[Column]
    excluded: list[Excluded]
    samples: pd.DataFrame  # tidy: column, metric, session, value
    stats: pd.DataFrame  # index (metric, column): n, median, stddev, ci_low, ci_high, source
    verdicts: list[Verdict]
    threshold: float
    alpha: float
    warnings: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # RUN arguments without a single valid session
    title: str = ""  # what every column shares (board, model, ...); the labels say what differs
    not_comparable: dict[str, str] = field(default_factory=dict)  # column label -> why it has no baseline

    @property
    def regressions(self) -> list[Verdict]:
        """The verdicts that fail the gate."""
        return [v for v in self.verdicts if v.regression]

    @property
    def gate_failed(self) -> bool:
        """True when a metric regressed or a run had nothing valid to check."""
        return bool(self.regressions or self.unchecked)

    def cell(self, metric: Metric, column: Column) -> pd.Series | None:
        """The statistics of one metric in one column, or None when the metric is absent there."""
        key = (metric.key, column.label)
        return self.stats.loc[key] if key in self.stats.index else None

    def verdict(self, metric: Metric, column: Column) -> Verdict | None:
        """The verdict of one metric in one column, if it has a baseline."""
        return next((v for v in self.verdicts if v.metric is metric and v.column == column.label), None)

    def baseline_of(self, column: Column) -> str | None:
        """Label of the baseline a column is compared with."""
        return next((v.baseline for v in self.verdicts if v.column == column.label), None)


def _samples(columns: Sequence[Column]) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for column in columns:
        for metric in METRICS:
            per_rep = [
                (session.path.name, value)
                for session in column.sessions
                for value in repetition_samples(metric, session.measured_repetitions(), session.of_type("sample"))
            ]
            source = "repetitions"
            if not per_rep:  # only the summary has it (one value per session)
                source = "summary"
                per_rep = [(s.path.name, float(s.summary[metric.key])) for s in column.sessions
                           if s.summary is not None and isinstance(s.summary.get(metric.key), (int, float))]
            rows += [{"column": column.label, "metric": metric.key, "session": name, "value": value,
                      "source": source} for name, value in per_rep]
    return pd.DataFrame(rows, columns=["column", "metric", "session", "value", "source"])


def _stats(samples: pd.DataFrame) -> pd.DataFrame:
    if samples.empty:
        return pd.DataFrame(columns=["n", "median", "stddev", "ci_low", "ci_high", "source"],
                            index=pd.MultiIndex.from_tuples([], names=["metric", "column"]))
    grouped = samples.groupby(["metric", "column"], sort=False)
    stats = grouped["value"].agg(n="count", median="median", stddev="std")
    stats["stddev"] = stats["stddev"].fillna(0.0)
    intervals = {key: bootstrap_ci(values.to_numpy()) for key, values in grouped["value"]}
    stats["ci_low"] = [intervals[key][0] for key in stats.index]
    stats["ci_high"] = [intervals[key][1] for key in stats.index]
    stats["source"] = grouped["source"].first()
    return stats


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _verdict(metric: Metric, column: Column, base: Column, values: dict[tuple[str, str], list[float]],
             stats: pd.DataFrame, threshold: float, alpha: float) -> Verdict | None:
    ours, theirs = values.get((metric.key, column.label), []), values.get((metric.key, base.label), [])
    if not ours and not theirs:
        return None
    if not ours or not theirs:
        where = column.label if not ours else base.label
        return Verdict(metric, column.label, base.label, None, None, None, False, False, False,
                       f"absent in {where}: not compared")
    base_median = float(stats.at[(metric.key, base.label), "median"])
    median = float(stats.at[(metric.key, column.label), "median"])
    unchanged = abs(median - base_median) <= UNCHANGED_RELATIVE * max(abs(base_median), abs(median))
    delta = 0.0 if unchanged else (median - base_median) / base_median if base_median != 0 else None
    worse = not unchanged and ((median < base_median) if metric.higher_is_better else (median > base_median))
    test = mann_whitney_u(ours, theirs) if min(len(ours), len(theirs)) >= 2 else None
    p = test.p_value if test else None
    significant = not unchanged and p is not None and p < alpha
    beyond = delta is not None and worse and abs(delta) > threshold
    regression = beyond and significant
    if test is None:
        tested = f"not tested, {min(len(ours), len(theirs))} value (2 per run needed)"
    else:
        tested = f"p={p:.2g}, {test.method} Mann-Whitney U, {test.n_x} vs {test.n_y} repetitions"
    limit = f"{threshold * 100:g}%"
    change = _pct(delta) if delta is not None else "changed"
    if unchanged:
        reason = f"unchanged (within {UNCHANGED_RELATIVE:g} relative; {tested})"
    elif regression:
        reason = f"{change}: worse by more than {limit} and significant ({tested}; p < {alpha:g}): regression"
    elif beyond:
        reason = f"{change}: worse by more than {limit} but not significant ({tested}; p >= {alpha:g}): noise"
    elif worse:
        reason = f"{change}: worse, within {limit} ({tested})"
    else:
        reason = f"{change}: better ({tested})"
    return Verdict(metric, column.label, base.label, delta, p, test.method if test else None, worse,
                   significant, regression, reason, unchanged)


def _baseline_for(column: Column, baselines: Sequence[Column]) -> Column | None:
    """The baseline of the column's own board/model/quantization group: only those are comparable."""
    return next((b for b in baselines if b.group == column.group), None)


def _not_comparable(column: Column, baselines: Sequence[Column]) -> str:
    if not baselines:
        return "not comparable: no baseline"
    base = baselines[0]
    differ = [name for name, a, b in zip(GROUP_FIELDS, column.group, base.group, strict=True) if a != b]
    verb = "differ" if len(differ) > 1 else "differs"
    return f"not comparable with {base.label}: {' and '.join(differ)} {verb}; shown, never gated"


def compare_runs(runs: Sequence[Path], baseline: Path | None = None, threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Load RUN files or directories, compute the statistics and set each run against its baseline.

    Without `baseline` the first RUN is the baseline; a single RUN directory uses the oldest
    session of each board/model/quantization group.
    """
    if not runs:
        raise ConfigError("no runs given; pass session JSONL files or directories")
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha {alpha} must lie between 0 and 1, e.g. 0.05")
    columns: list[Column] = []
    excluded: list[Excluded] = []
    warnings: list[str] = []
    unchecked: list[str] = []
    specs = list(runs)
    if baseline is not None:
        specs = [baseline, *[r for r in runs if r.resolve() != baseline.resolve()]]
    for i, spec in enumerate(specs):
        is_base = (baseline is not None or len(specs) > 1) and i == 0
        found, left_out, warned = load_columns(spec, baseline=is_base)
        if not found:
            if is_base:
                why = "; ".join(f"{e.path.name}: {e.status}, {'; '.join(e.reasons)}" for e in left_out)
                raise ConfigError(f"baseline {spec} has no valid session ({why}); record a valid baseline run")
            unchecked.append(str(spec))
        columns += found
        excluded += left_out
        warnings += warned
    if len(specs) == 1 and baseline is None:
        for col in columns:
            col.baseline = not any(c.group == col.group for c in columns[: columns.index(col)])
    title = assign_labels(columns)
    if not columns:
        why = "; ".join(f"{e.path.name}: {e.status}, {'; '.join(e.reasons)}" for e in excluded)
        raise ConfigError(f"no valid session to compare ({why}); runs must be valid (status ok)")
    # Keep each board/model/quantization group together, in order of first appearance.
    order = {g: i for i, g in reversed(list(enumerate(c.group for c in columns)))}
    columns.sort(key=lambda c: (order[c.group], not c.baseline))
    samples = _samples(columns)
    values = {key: group.tolist() for key, group in samples.groupby(["metric", "column"], sort=False)["value"]}
    stats = _stats(samples)
    baselines = [c for c in columns if c.baseline]
    verdicts = []
    not_comparable: dict[str, str] = {}
    for column in columns:
        base = None if column.baseline else _baseline_for(column, baselines)
        if base is None:
            if not column.baseline:
                not_comparable[column.label] = _not_comparable(column, baselines)
            continue
        verdicts += [v for m in METRICS if (v := _verdict(m, column, base, values, stats, threshold, alpha))]
    return Comparison(columns, excluded, samples, stats, verdicts, threshold, alpha, warnings, unchecked,
                      title, not_comparable)
