"""`tiny-profiler report`: PNG plots and a markdown summary that links them.

Plots are drawn on matplotlib's Agg canvas directly (no pyplot, no display):

- `tokens_per_s.png`: decode and prefill tok/s per run, median with its 95%
  bootstrap interval as error bars and every repetition as a dot;
- `token_latency.png`: the distribution of per-token decode latency;
- `timeline_<kind>.png`: one per telemetry kind present (memory today; power
  and temperature when a run has them), values over device time with every
  token marked along the bottom and warmup shaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from profiler.compare_load import Column, SessionFile
from profiler.compare_stats import METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from profiler.compare import Comparison

MAX_TIMELINES = 6  # runs drawn per timeline figure
KIND_UNITS = {"memory": "bytes", "power": "mW", "temperature": "°C"}
KNOWN_KINDS = ("memory", "power", "temperature")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _colors(n: int) -> list[str]:
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    return [palette[i % len(palette)] for i in range(n)]


def plot_rates(comparison: Comparison, path: Path) -> Path:
    """Decode and prefill tok/s per run: median, 95% CI error bars, repetitions as dots."""
    columns = comparison.columns
    figure = _figure(max(7.5, 1.6 * len(columns) + 2), 4.5)
    axes = figure.subplots(1, 2, squeeze=False)[0]
    colors = _colors(len(columns))
    for ax, key in zip(axes, ("decode_tokens_per_s", "prefill_tokens_per_s"), strict=True):
        metric = next(m for m in METRICS if m.key == key)
        for x, (column, color) in enumerate(zip(columns, colors, strict=True)):
            stats = comparison.cell(metric, column)
            if stats is None:
                continue
            values = comparison.samples.query("metric == @key and column == @column.label")["value"].to_numpy()
            jitter = np.linspace(-0.12, 0.12, values.size) if values.size > 1 else np.zeros(1)
            ax.scatter(x + jitter, values, s=12, color=color, alpha=0.45, zorder=2)
            low, high = stats["median"] - stats["ci_low"], stats["ci_high"] - stats["median"]
            ax.errorbar([x], [stats["median"]], yerr=[[max(low, 0)], [max(high, 0)]], fmt="o", color=color,
                        ecolor="black", capsize=6, markersize=8, zorder=3)
            verdict = comparison.verdict(metric, column)
            if verdict is not None and verdict.delta is not None:
                ax.annotate(f"{verdict.delta * 100:+.1f}%", (x, stats["median"]), textcoords="offset points",
                            xytext=(10, 0), color="red" if verdict.regression else "black", fontsize=8)
        names = [c.label + (" (base)" if c.baseline and len(columns) > 1 else "") for c in columns]
        ax.set_xticks(range(len(columns)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{metric.label} (higher is better)")
        ax.set_ylabel(metric.unit)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle("tokens/s per run: median with 95% bootstrap CI, dots are repetitions")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def token_latencies(session: SessionFile) -> list[float]:
    """Per-token decode latencies (ms, device time) of a session's measured, valid repetitions."""
    timer_hz = float(session.header.get("timer_hz") or 0)
    if timer_hz <= 0:
        return []
    measured = {r.get("repetition") for r in session.measured_repetitions()}
    by_rep: dict[int, list[tuple[int, int]]] = {}
    for token in session.of_type("token"):
        if not token.get("warmup") and token.get("repetition") in measured:
            by_rep.setdefault(token["repetition"], []).append((token["index"], token["ticks"]))
    out: list[float] = []
    for tokens in by_rep.values():
        ticks = np.array([t for _, t in sorted(tokens)], dtype=np.float64)
        out += list(np.diff(ticks) * 1e3 / timer_hz)
    return out


def plot_latency(columns: Sequence[Column], path: Path) -> Path:
    """Histogram of per-token decode latency per run, p50 and p95 marked."""
    figure = _figure(8, 4.5)
    ax = figure.subplots()
    drawn = 0
    for column, color in zip(columns, _colors(len(columns)), strict=True):
        values = np.array([v for s in column.sessions for v in token_latencies(s)])
        if values.size == 0:
            continue
        p50, p95 = np.percentile(values, [50, 95])
        ax.hist(values, bins=40, histtype="stepfilled", alpha=0.35, color=color,
                label=f"{column.label}: p50 {p50:.3f} ms, p95 {p95:.3f} ms (n={values.size})")
        ax.axvline(p50, color=color, linestyle="-", linewidth=1)
        ax.axvline(p95, color=color, linestyle="--", linewidth=1)
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no token records", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8)
    ax.set_xlabel("per-token decode latency (ms, device time); solid p50, dashed p95")
    ax.set_ylabel("tokens")
    ax.set_title("per-token latency distribution (measured repetitions)")
    figure.savefig(path)
    return path


def sample_kinds(columns: Sequence[Column]) -> list[str]:
    """Telemetry kinds present in any run, the known ones first."""
    found = {s.get("kind") for c in columns for session in c.sessions for s in session.of_type("sample")}
    return [k for k in KNOWN_KINDS if k in found] + sorted(str(k) for k in found - set(KNOWN_KINDS) if k)


def _timeline(ax: Axes, session: SessionFile, kind: str, title: str) -> None:
    timer_hz = float(session.header.get("timer_hz") or 1)
    ticks = [r["ticks"] for r in session.records if isinstance(r.get("ticks"), int)]
    ticks += [r["start_ticks"] for r in session.of_type("phase") if isinstance(r.get("start_ticks"), int)]
    origin = min(ticks) if ticks else 0

    def seconds(t: float) -> float:
        return (t - origin) / timer_hz

    samples = [s for s in session.of_type("sample") if s.get("kind") == kind]
    keys = sorted({k for s in samples for k, v in (s.get("values") or {}).items() if isinstance(v, (int, float))})
    for key in keys:
        points = [(seconds(s["ticks"]), s["values"][key]) for s in samples if key in (s.get("values") or {})]
        xs, ys = zip(*sorted(points), strict=True) if points else ((), ())
        style = "steps-post" if kind == "memory" else "default"  # memory samples are high-water marks
        ax.plot(xs, ys, marker="o", markersize=3, drawstyle=style, label=key)
    for phase in session.of_type("phase"):
        if phase.get("warmup") and isinstance(phase.get("start_ticks"), int):
            ax.axvspan(seconds(phase["start_ticks"]), seconds(phase["end_ticks"]),
                       color="grey", alpha=0.15, linewidth=0)
    token_x = [seconds(t["ticks"]) for t in session.of_type("token")]
    ax.plot(token_x, [0.02] * len(token_x), "|", color="black", markersize=6, alpha=0.6,
            transform=ax.get_xaxis_transform(), label="token")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(KIND_UNITS.get(kind, kind))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_timeline(columns: Sequence[Column], kind: str, path: Path) -> Path:
    """Values of one telemetry kind over device time, one panel per run (its first session)."""
    shown = [c for c in columns if any(s.get("kind") == kind for s in c.sessions[0].of_type("sample"))]
    shown = shown[:MAX_TIMELINES]
    figure = _figure(10, 2.8 * max(1, len(shown)) + 0.6)
    axes = figure.subplots(max(1, len(shown)), 1, squeeze=False)[:, 0]
    for ax, column in zip(axes, shown, strict=False):
        _timeline(ax, column.sessions[0], kind, f"{column.label}: {column.sessions[0].path.name}")
    axes[-1].set_xlabel("device time (s); | = token, grey = warmup")
    figure.suptitle(f"{kind} over time")
    figure.savefig(path)
    return path


def write_report(comparison: Comparison, out: Path) -> list[Path]:
    """Write the PNGs and `summary.md` into `out`; returns the written paths, summary first."""
    from profiler.compare_format import render_markdown

    out.mkdir(parents=True, exist_ok=True)
    plots = [("decode and prefill tokens/s", plot_rates(comparison, out / "tokens_per_s.png")),
             ("per-token latency", plot_latency(comparison.columns, out / "token_latency.png"))]
    kinds = sample_kinds(comparison.columns)
    plots += [(f"{kind} timeline", plot_timeline(comparison.columns, kind, out / f"timeline_{kind}.png"))
              for kind in kinds]
    lines = ["# tiny-profiler report", "", "| run | sessions | board | model | quantization | firmware | files |",
             "|---|---:|---|---|---|---|---|"]
    for column in comparison.columns:
        board, model, quant = column.group
        files = ", ".join(f"`{s.path.name}`" for s in column.sessions)
        role = " (baseline)" if column.baseline and len(comparison.columns) > 1 else ""
        lines.append(f"| {column.label}{role} | {len(column.sessions)} | "
                     f"{board}{' (emulated)' if column.header.get('emulated') else ''} | {model} | {quant} | "
                     f"{column.header.get('firmware_id')} | {files} |")
    lines += ["", render_markdown(comparison).replace("### tiny-profiler compare", "## Statistics"), "## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({path.name})\n" for title, path in plots]
    missing = [k for k in KNOWN_KINDS if k not in kinds]
    if missing:
        lines.append(f"No {' or '.join(missing)} samples in these runs: those timelines are not drawn.")
    summary = out / "summary.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [summary, *(path for _, path in plots)]
