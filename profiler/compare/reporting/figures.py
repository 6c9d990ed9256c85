"""Latency by context position and energy per token: the figures that show where time and energy go.

Drawn on matplotlib's Agg canvas (no pyplot, no display). Each run is one
colour and its short label (`labels.assign_labels`); the full names live in
the report's legend table, so a long name never shrinks a panel.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from profiler.compare.load import Column
from profiler.compare.reporting.series import energy_series, fitted_slope, steps_by_position

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
MAX_PANELS = 6  # runs drawn as panels of their own; the rest are listed as left out
PREFILL_COLOR, DECODE_COLOR = "#fde9c9", "#dcebf7"


def figure(width: float, height: float) -> Figure:
    """An Agg-backed figure with constrained layout (titles and labels are never clipped)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def colors(n: int) -> list[str]:
    """One colour per run, cycling through the palette."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def wrap(label: str, width: int = 28) -> str:
    """A label broken into lines of at most `width` characters (at ` · ` and spaces)."""
    return "\n".join(textwrap.wrap(label, width=width, break_long_words=True)) or label


def note(ax: Axes, text: str) -> None:
    """A centred message in an empty panel."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig: Figure, path: Path) -> Path:
    """Write the figure as PNG, making the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_latency_by_position(columns: Sequence[Column], path: Path, title: str = "") -> Path:
    """Decode step latency at each context position, one line per run, prefill as one bar; slope printed.

    Thin lines are single repetitions, the thick line their median per position. The
    prefill bar spans the prompt's positions at the height of its time per prompt token.
    """
    fig = figure(10, 5.2)
    ax = fig.subplots()
    drawn = 0
    bars: list[tuple[float, int, str, str]] = []  # prefill bars, drawn tallest first so none hides another
    for column, color in zip(columns, colors(len(columns)), strict=True):
        session = column.sessions[0]
        steps = [rep for pooled in column.sessions for rep in steps_by_position(pooled)]  # every session's reps
        if not steps or not steps[0].positions:
            continue
        drawn += 1
        for rep in steps:
            ax.plot(rep.positions, rep.latency_ms, color=color, linewidth=0.8, alpha=0.35)
        positions = sorted({p for rep in steps for p in rep.positions})
        median = [float(np.median([v for rep in steps for p, v in zip(rep.positions, rep.latency_ms, strict=True)
                                   if p == q])) for q in positions]
        slope = fitted_slope(session, steps)
        text = f"{column.label}: decode steps"
        if slope is not None:
            text += f", +{slope.ms_per_position * 1e3:,.1f} µs per position"
            if slope.instructions_per_position is not None:
                text += f" (≈ {slope.instructions_per_position:,.0f} instructions)"
            fit_x = np.array([positions[0], positions[-1]], dtype=np.float64)
            ax.plot(fit_x, slope.intercept_ms + slope.ms_per_position * fit_x, color=color, linestyle=":",
                    linewidth=1.2)
        ax.plot(positions, median, color=color, linewidth=2.2, marker="o", markersize=3, label=wrap(text, 60))
        prompt = steps[0].prompt_tokens
        prefill = float(np.median([rep.prefill_ms_per_token for rep in steps]))
        ttft = float(np.median([rep.ttft_ms for rep in steps]))
        bars.append((prefill, prompt, color, wrap(f"{column.label}: prefill, {ttft:,.2f} ms for {prompt} prompt "
                                                  f"tokens ({prefill:,.3f} ms per token)", 60)))
    for height, prompt, color, label in sorted(bars, key=lambda bar: -bar[0]):
        ax.bar(0, height, width=prompt, align="edge", color=color, alpha=0.3, edgecolor=color, linewidth=1.5,
               label=label)
    if not drawn:
        note(ax, "no token records in these runs")
    else:
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1 if drawn == 1 else 2,
                  frameon=False)
    ax.set_xlabel("context position (decode step's token position; the prefill bar spans the prompt)")
    ax.set_ylabel("ms per token (device time)")
    ax.grid(alpha=0.3)
    head = "latency by context position: thin = repetitions, thick = median, dotted = fitted line"
    ax.set_title(f"{title}\n{head}" if title else head, fontsize=10)
    return save(fig, path)


def _energy_panel(ax: Axes, column: Column, color: str) -> bool:
    series = energy_series(column.sessions[0])
    if series is None:
        note(ax, f"{column.label}: no per-token energy in its token records (no power measured)")
        return False
    ax.axvspan(*(t * 1e3 for t in series.prefill_s), color=PREFILL_COLOR, linewidth=0, label="prefill")
    ax.axvspan(*(t * 1e3 for t in series.decode_s), color=DECODE_COLOR, linewidth=0, label="decode")
    starts = [series.prefill_s[0], *series.token_s[:-1]]
    for i, (start, end, mj) in enumerate(zip(starts, series.token_s, series.energy_mj, strict=True)):
        if mj is not None:  # the first token's bar is its prefill: hatched, so it reads as another kind of cost
            ax.bar(start * 1e3, mj, width=(end - start) * 1e3, align="edge", color=color, alpha=0.45 if i == 0
                   else 0.8, hatch="//" if i == 0 else None, edgecolor="white", linewidth=0.5)
    first = series.energy_mj[0]
    decode = series.mj_per_token
    summary = "decode: -" if decode is None else \
        f"decode: {decode:.3f} mJ per token (over {len(series.energy_mj) - 1})"
    if first is not None:
        summary += f"; first token (prefill) {first:.3f} mJ"
    ax.set_title(f"{column.label}, repetition {series.repetition}: {summary}", fontsize=9)
    ax.set_ylabel("energy per token (mJ)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    if series.power_mw:
        twin = ax.twinx()
        # Each sample is the mean over the interval that ends at it: a step back to the previous sample.
        times = [series.prefill_s[0] * 1e3, *(t * 1e3 for t in series.power_s)]
        twin.plot(times, [series.power_mw[0], *series.power_mw], color="black", linewidth=1.2,
                  drawstyle="steps-pre", label="power")
        low, high = min(series.power_mw), max(series.power_mw)
        pad = max(0.1 * (high - low), 0.05 * high, 1.0)
        twin.set_ylim(max(0.0, low - pad), high + pad)
        twin.set_ylabel("power (mW), black line")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
    return True


def plot_energy_per_token(columns: Sequence[Column], path: Path, title: str = "") -> Path:
    """Per-token energy as bars over each token's interval, power as a line, prefill and decode shaded."""
    shown = list(columns)[:MAX_PANELS]
    fig = figure(10, 2.9 * max(1, len(shown)) + 0.8)
    axes = fig.subplots(max(1, len(shown)), 1, squeeze=False)[:, 0]
    for ax, column, color in zip(axes, shown, colors(len(shown)), strict=False):
        _energy_panel(ax, column, color)
    axes[-1].set_xlabel("device time since the repetition's prefill started (ms); a bar spans its token's interval")
    head = "energy per token (bars, mJ) and power (line, mW)"
    fig.suptitle(f"{title}\n{head}" if title else head, fontsize=10)
    if len(columns) > len(shown):
        fig.text(0.01, 0.005, f"{len(columns) - len(shown)} more runs not drawn", fontsize=7)
    return save(fig, path)


def kernel_shares(column: Column) -> dict[str, float] | None:
    """Instructions per decode step by part (matmul, attention, ...), from a `kernels` sample, if the run has one."""
    for session in column.sessions:
        for sample in session.of_type("sample"):
            if sample.get("kind") == "kernels":
                values = {k: float(v) for k, v in (sample.get("values") or {}).items() if isinstance(v, (int, float))}
                if values and sum(values.values()) > 0:
                    return values
    return None


def plot_kernel_shares(columns: Sequence[Column], path: Path, title: str = "") -> Path | None:
    """One stacked bar per run: the share of a decode step's instructions in matmul, attention and the rest.

    Drawn only when a run carries a `kernels` sample (docs/jsonl.md); returns None otherwise.
    """
    shares = [(c, s) for c in columns if (s := kernel_shares(c)) is not None]
    if not shares:
        return None
    parts: list[str] = []
    for _, values in shares:
        parts += [k for k in values if k not in parts]
    fig = figure(10, max(2.8, 1.4 + 0.55 * len(shares)))
    ax = fig.subplots()
    palette = dict(zip(parts, colors(len(parts)), strict=True))
    for y, (_, values) in enumerate(shares):
        total = sum(values.values())
        left = 0.0
        for part in parts:
            share = values.get(part, 0.0) / total * 100
            ax.barh(y, share, left=left, color=palette[part], edgecolor="white",
                    label=part if y == 0 else None)
            if share >= 6:
                ax.text(left + share / 2, y, f"{share:.0f}%", ha="center", va="center", fontsize=8, color="white")
            left += share
        ax.text(101, y, f"{total:,.0f} instr/step", va="center", fontsize=8)
    ax.set_yticks(range(len(shares)), [wrap(c.label, 30) for c, _ in shares], fontsize=8)
    ax.set_ylim(len(shares) - 0.5, -0.5)
    ax.set_xlim(0, 118)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("share of a decode step's instructions (%)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=min(len(parts), 7), frameon=False)
    head = "where a decode step's instructions go"
    ax.set_title(f"{title}\n{head}" if title else head, fontsize=10)
    return save(fig, path)
