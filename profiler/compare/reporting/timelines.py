"""Rates per run and telemetry over device time, each series on an axis of its own unit.

Timelines: CPU utilization in %, memory in KB, power in mW, temperature in
°C. One figure per kind, one panel per run (its first session), titled by the
run's short label; the figure's title says what the series is, once. Tick
counts (CPU busy/wait ticks) are not drawn: they are on another scale and
would flatten the percentages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiler.compare.load import Column, SessionFile
from profiler.compare.reporting.figures import MAX_PANELS, colors, figure, note, save, wrap
from profiler.compare.reporting.series import device_origin
from profiler.compare.runs import Comparison
from profiler.compare.stats import METRICS


@dataclass(frozen=True)
class Kind:
    """A telemetry kind: its axis label, how to scale its values, which keys to draw."""

    name: str
    axis: str
    scale: float
    keys: tuple[str, ...] | None = None  # None: every numeric key
    suffix: str = ""  # keys ending so are drawn, when `keys` is None


KINDS: dict[str, Kind] = {
    "cpu": Kind("CPU utilization", "%", 1.0, suffix="_utilization_percent"),
    "memory": Kind("memory high-water marks", "KB", 1 / 1024,
                   ("peak_ram_bytes", "arena_used_bytes", "kv_cache_bytes", "static_ram_bytes", "stack_peak_bytes")),
    "power": Kind("power", "mW", 1.0),
    "temperature": Kind("temperature", "°C", 1.0),
}
KNOWN_KINDS = tuple(KINDS)


def sample_kinds(columns: Sequence[Column]) -> list[str]:
    """Telemetry kinds present in any run, the known ones first."""
    found = {s.get("kind") for c in columns for session in c.sessions for s in session.of_type("sample")}
    return [k for k in KNOWN_KINDS if k in found] + sorted(str(k) for k in found - set(KNOWN_KINDS) if k)


def _series_keys(kind: Kind, samples: list[dict[str, object]]) -> list[str]:
    present = {k for s in samples for k, v in (s.get("values") or {}).items()  # type: ignore[attr-defined]
               if isinstance(v, (int, float))}
    if kind.keys is not None:
        return [k for k in kind.keys if k in present]
    return sorted(k for k in present if k.endswith(kind.suffix))


def _panel(ax: object, session: SessionFile, name: str, label: str) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    kind = KINDS.get(name, Kind(name, name, 1.0))
    timer_hz = float(session.header.get("timer_hz") or 1)
    origin = device_origin(session)
    samples = [s for s in session.of_type("sample") if s.get("kind") == name]
    keys = _series_keys(kind, samples)
    styles = ("-", "--", ":", "-.")  # equal series (decode and prefill both at 100 %) stay visible
    for i, (key, color) in enumerate(zip(keys, colors(len(keys)), strict=True)):
        points = sorted(((s["ticks"] - origin) / timer_hz, float(s["values"][key]) * kind.scale)
                        for s in samples if key in (s.get("values") or {}))
        xs, ys = zip(*points, strict=True)
        # memory samples are high-water marks held until the next one; a lone CPU sample per repetition too
        style = "steps-post" if name in ("memory", "cpu") else "default"
        ax.plot(xs, ys, marker="o", markersize=2.5, drawstyle=style, color=color, linestyle=styles[i % 4],
                linewidth=2.4 - 0.5 * (i % 4),
                label=key.removesuffix(kind.suffix).removesuffix("_bytes").replace("_", " "))
    for phase in session.of_type("phase"):
        if phase.get("warmup") and isinstance(phase.get("start_ticks"), int):
            ax.axvspan((phase["start_ticks"] - origin) / timer_hz, (phase["end_ticks"] - origin) / timer_hz,
                       color="grey", alpha=0.15, linewidth=0)
    token_x = [(t["ticks"] - origin) / timer_hz for t in session.of_type("token")]
    ax.plot(token_x, [0.02] * len(token_x), "|", color="black", markersize=6, alpha=0.5,
            transform=ax.get_xaxis_transform())
    if name == "cpu":
        ax.set_ylim(0, 105)
    elif keys:
        low = min(line.get_ydata().min() for line in ax.get_lines()[: len(keys)])  # type: ignore[union-attr]
        if name != "temperature" or low <= 0:
            ax.set_ylim(bottom=0)
    ax.set_title(label, fontsize=9, loc="left")
    ax.set_ylabel(kind.axis)
    ax.grid(alpha=0.3)
    if len(keys) > 1:  # one series is named by the figure's title
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    elif not keys:
        note(ax, f"no numeric {name} values")


def plot_timeline(columns: Sequence[Column], name: str, path: Path, title: str = "") -> Path:
    """One telemetry kind over device time, one panel per run (its first session)."""
    shown = [c for c in columns if any(s.get("kind") == name for s in c.sessions[0].of_type("sample"))]
    shown = shown[:MAX_PANELS]
    fig = figure(10, 2.4 * max(1, len(shown)) + 0.9)
    axes = fig.subplots(max(1, len(shown)), 1, squeeze=False, sharex=False)[:, 0]
    for ax, column in zip(axes, shown, strict=False):
        _panel(ax, column.sessions[0], name, column.label)
    axes[-1].set_xlabel("device time since the session's first tick (s); | = token, grey = warmup")
    kind = KINDS.get(name, Kind(name, name, 1.0))
    head = f"{kind.name} ({kind.axis}) over device time"
    fig.suptitle(f"{title}\n{head}" if title else head, fontsize=10)
    return save(fig, path)


def plot_rates(comparison: Comparison, path: Path) -> Path:
    """Decode and prefill tok/s per run, runs as rows: median with its 95% CI, repetitions as dots.

    Runs are rows, so a long label takes width beside the panels instead of squeezing them.
    """
    columns = comparison.columns
    names = [wrap(c.label + (" (baseline)" if c.baseline and len(columns) > 1 else ""), 30) for c in columns]
    lines = max(n.count("\n") + 1 for n in names) if names else 1
    fig = figure(11, max(3.0, 1.4 + max(1, len(columns)) * (0.4 + 0.22 * lines)))
    axes = fig.subplots(1, 2, squeeze=False, sharey=True)[0]
    palette = colors(len(columns))
    for ax, key in zip(axes, ("decode_tokens_per_s", "prefill_tokens_per_s"), strict=True):
        metric = next(m for m in METRICS if m.key == key)
        for y, (column, color) in enumerate(zip(columns, palette, strict=True)):
            stats = comparison.cell(metric, column)
            if stats is None:
                continue
            values = comparison.samples.query("metric == @key and column == @column.label")["value"].to_numpy()
            # repetitions spread just below the median (the y axis runs downwards), its value above it
            jitter = np.linspace(0.1, 0.28, values.size) if values.size > 1 else np.full(1, 0.1)
            ax.scatter(values, y + jitter, s=12, color=color, alpha=0.45, zorder=2)
            low, high = stats["median"] - stats["ci_low"], stats["ci_high"] - stats["median"]
            ax.errorbar([stats["median"]], [y], xerr=[[max(low, 0)], [max(high, 0)]], fmt="o", color=color,
                        ecolor="black", capsize=5, markersize=7, zorder=3)
            verdict = comparison.verdict(metric, column)
            text = f"{stats['median']:,.1f}"
            if verdict is not None and verdict.unchanged:
                text += " (unchanged)"
            elif verdict is not None and verdict.delta is not None:
                text += f" ({verdict.delta * 100:+.1f}%)"
            ax.annotate(text, (stats["median"], y), textcoords="offset points", xytext=(0, 7), ha="center",
                        fontsize=8, color="red" if verdict is not None and verdict.regression else "black")
        ax.set_yticks(range(len(columns)), names, fontsize=8)
        ax.set_ylim(len(columns) - 0.5, -0.6)
        ax.set_xlim(left=0)
        ax.margins(x=0.15)
        ax.set_title(f"{metric.name}, higher is better", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    head = "tokens per second: median with 95% bootstrap CI, dots are repetitions"
    fig.suptitle(f"{comparison.title}\n{head}" if comparison.title else head, fontsize=10)
    return save(fig, path)
