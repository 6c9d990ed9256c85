"""`tiny-profiler report`: the figures, a markdown summary and one self-contained `report.html`.

Figures (matplotlib's Agg canvas, no display), each run under its short label
(what differs between the runs; what they share is the title):

- `latency_by_position.png`: every decode step at its context position, one line per run, prefill as one
  bar, with the fitted per-position growth;
- `energy_per_token.png`: per-token energy as bars over each token's interval, power as a line, prefill and
  decode shaded;
- `roofline.png`: measured decode against the board's compute and flash-bandwidth ceilings;
- `tokens_per_s.png`: decode and prefill tok/s per run with their 95% intervals;
- `kernel_shares.png`: where a run carries a `kernels` sample, a stacked bar of a decode step's instructions
  in matmul, attention and the rest;
- `timeline_<kind>.png`: CPU utilization (%), memory (KB), power (mW), temperature (°C) over device time.

`summary.md` links the PNGs; `report.html` embeds them (see `profiler.compare.reporting.html`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from profiler.compare.reporting.figures import plot_energy_per_token, plot_kernel_shares, plot_latency_by_position
from profiler.compare.reporting.roofline import plot_roofline
from profiler.compare.reporting.series import token_latencies
from profiler.compare.reporting.timelines import KNOWN_KINDS, plot_rates, plot_timeline, sample_kinds

if TYPE_CHECKING:
    from profiler.compare.runs import Comparison

__all__ = ["plot_rates", "token_latencies", "write_figures", "write_report"]


def write_figures(comparison: Comparison, out: Path) -> list[tuple[str, Path]]:
    """Every figure of the report, as (caption, path), in reading order."""
    columns, title = comparison.columns, comparison.title
    figures = [
        ("latency by context position", plot_latency_by_position(columns, out / "latency_by_position.png", title)),
        ("energy per token", plot_energy_per_token(columns, out / "energy_per_token.png", title)),
        ("roofline", plot_roofline(comparison, out / "roofline.png")),
        ("decode and prefill tokens/s", plot_rates(comparison, out / "tokens_per_s.png")),
    ]
    shares = plot_kernel_shares(columns, out / "kernel_shares.png", title)
    if shares is not None:
        figures.append(("kernel shares", shares))
    figures += [(f"{kind} timeline", plot_timeline(columns, kind, out / f"timeline_{kind}.png", title))
                for kind in sample_kinds(columns)]
    return figures


def write_report(comparison: Comparison, out: Path) -> list[Path]:
    """Write the PNGs, `summary.md` and `report.html` into `out`; returns the paths, summary and HTML first."""
    from profiler.compare.format import render_markdown
    from profiler.compare.reporting.html import write_html

    out.mkdir(parents=True, exist_ok=True)
    figures = write_figures(comparison, out)
    lines = ["# tiny-profiler report", "",
             render_markdown(comparison).replace("### tiny-profiler compare", "## Statistics"), "## Figures", ""]
    lines += [f"### {caption}\n\n![{caption}]({path.name})\n" for caption, path in figures]
    missing = [k for k in KNOWN_KINDS if k not in sample_kinds(comparison.columns)]
    if missing:
        lines.append(f"No {' or '.join(missing)} samples in these runs: those timelines are not drawn.")
    summary = out / "summary.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    html = write_html(comparison, figures, out / "report.html")
    return [summary, html, *(path for _, path in figures)]
