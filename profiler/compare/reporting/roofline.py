"""Roofline: each run's measured decode rate against its board's compute and flash-bandwidth ceilings.

The ceilings are those `model inspect` states (`profiler.fit_check`):
compute `clock * MACs per cycle`, bandwidth `flash bytes per second`, for the
board in the session header. A decode step's work is the model's weight MACs
plus its attention MACs at the positions the run decoded, and the weight bytes
it streams from flash (`Costs.flash_bytes_per_token`). The model's shape is the
session header's `model_config`; for files written before it was recorded, the
model file is found by the header's model name (a bundled model, or a `.tpm`
beside the session file) and used only when its SHA-256 is the one recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from profiler.compare.load import Column
from profiler.compare.reporting.figures import colors, figure, note, save, wrap
from profiler.compare.runs import Comparison

if TYPE_CHECKING:
    from profiler.models.format import ModelConfig


@dataclass(frozen=True)
class RooflinePoint:
    """One run on its board's roofline."""

    label: str
    board: str
    decode_tokens_per_s: float
    macs_per_token: float
    flash_bytes_per_token: float
    peak_macs_per_s: float  # compute ceiling
    flash_bytes_per_s: float | None  # bandwidth ceiling, None when unknown for the board

    @property
    def intensity(self) -> float:
        """MACs per byte read from flash."""
        return self.macs_per_token / self.flash_bytes_per_token

    @property
    def achieved_macs_per_s(self) -> float:
        """MACs a second at the measured decode rate."""
        return self.decode_tokens_per_s * self.macs_per_token

    @property
    def ceiling_tokens_per_s(self) -> float:
        """The lower of the two ceilings, in decode tokens a second."""
        compute = self.peak_macs_per_s / self.macs_per_token
        if self.flash_bytes_per_s is None:
            return compute
        return min(compute, self.flash_bytes_per_s / self.flash_bytes_per_token)


def _model_file(column: Column) -> Path | None:
    from profiler.api import resolve_model_path
    from profiler.errors import ProfilerError
    from profiler.models.format import image_sha256

    header = column.header
    name = str(header.get("model") or "")
    candidates: list[Path] = []
    try:
        candidates.append(resolve_model_path(name))
    except ProfilerError:
        pass
    candidates += [s.path.parent / f"{name}.tpm" for s in column.sessions]
    for path in candidates:
        if path.is_file() and image_sha256(path) == header.get("model_sha256"):
            return path
    return None


def _model_config(column: Column) -> ModelConfig | None:
    """The model's shape: from the session header (`model_config`), else from the model file."""
    from profiler.models.format import ModelConfig, read_header

    recorded = column.header.get("model_config")
    if isinstance(recorded, dict):
        return ModelConfig(**recorded)
    path = _model_file(column)
    return read_header(path).config if path is not None else None


def roofline_point(column: Column, decode_tokens_per_s: float | None) -> tuple[RooflinePoint | None, str]:
    """The column's point, or None with the reason it cannot be placed."""
    from platforms.boards import resolve_board
    from profiler.errors import ProfilerError
    from profiler.models.inspect import costs

    if decode_tokens_per_s is None or not np.isfinite(decode_tokens_per_s):
        return None, f"{column.label}: no decode rate"
    config = _model_config(column)
    if config is None:
        return None, (f"{column.label}: model {column.header.get('model')!r} with the recorded SHA-256 not found "
                      "(bundled, or a .tpm beside the session file)")
    try:
        board = resolve_board(str(column.header.get("board")))
    except ProfilerError:
        return None, f"{column.label}: board {column.header.get('board')!r} has no profile here"
    cost = costs(config)
    positions = [t["position"] for s in column.sessions for t in s.of_type("token")
                 if not t.get("warmup") and t.get("index", 0) > 0]
    per_position = cost.attention_macs_full / config.seq_len  # attention MACs per cached position
    attention = per_position * (float(np.mean(positions)) + 1) if positions else cost.attention_macs_mean
    # The same rows `model inspect` (board_fit) states its ceilings from.
    macs_per_cycle = board.core_facts.macs_per_cycle
    bandwidth = board.flash_read_bytes_per_s
    return RooflinePoint(column.label, board.name, decode_tokens_per_s, cost.weight_macs + attention,
                         cost.flash_bytes_per_token, board.clock_hz * macs_per_cycle, bandwidth), ""


def roofline_points(comparison: Comparison) -> tuple[list[RooflinePoint], list[str]]:
    """Every column that can be placed, and why the others cannot."""
    from profiler.compare.stats import METRICS

    metric = next(m for m in METRICS if m.key == "decode_tokens_per_s")
    points, missing = [], []
    for column in comparison.columns:
        stats = comparison.cell(metric, column)
        point, why = roofline_point(column, float(stats["median"]) if stats is not None else None)
        if point is None:
            missing.append(why)
        else:
            points.append(point)
    return points, missing


def plot_roofline(comparison: Comparison, path: Path) -> Path:
    """Log-log roofline per board: MACs/s against MACs per flash byte, one labelled point per run."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    points, missing = roofline_points(comparison)
    fig = figure(10, 5.8)
    ax = fig.subplots()
    if not points:
        note(ax, "no run could be placed:\n" + "\n".join(wrap(m, 90) for m in missing))
        return save(fig, path)
    boards = sorted({p.board for p in points})
    low = min(p.intensity for p in points) / 8
    high = max(p.intensity for p in points) * 8
    styles = ["-", "--", "-.", ":"]
    for board, style in zip(boards, styles * 4, strict=False):
        ref = next(p for p in points if p.board == board)
        x = np.geomspace(low, high, 200)
        roof = np.full_like(x, ref.peak_macs_per_s)
        if ref.flash_bytes_per_s is not None:
            roof = np.minimum(roof, ref.flash_bytes_per_s * x)
        ax.plot(x, roof, color="black", linestyle=style, linewidth=1.4,
                label=f"{board} ceiling: {ref.peak_macs_per_s / 1e6:,.0f} M MAC/s compute, "
                      + (f"{ref.flash_bytes_per_s / 1e6:,.0f} MB/s flash" if ref.flash_bytes_per_s else
                         "flash bandwidth unknown"))
    for number, (point, color) in enumerate(zip(points, colors(len(points)), strict=True), start=1):
        share = point.decode_tokens_per_s / point.ceiling_tokens_per_s
        ax.scatter([point.intensity], [point.achieved_macs_per_s], s=60, color=color, zorder=3,
                   label=wrap(f"{number}: {point.label}: {point.decode_tokens_per_s:,.1f} tok/s = {share:.0%} of its "
                              f"ceiling {point.ceiling_tokens_per_s:,.0f} tok/s", 70))
        # A number, not the label, beside the point: labels of close points would overlap.
        ax.annotate(str(number), (point.intensity, point.achieved_macs_per_s), textcoords="offset points",
                    xytext=(7, 3), fontsize=9, fontweight="bold", color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=min(p.achieved_macs_per_s for p in points) / 1.6)
    millions = FuncFormatter(lambda v, _: f"{v / 1e6:g} M")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(millions)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("arithmetic intensity (MACs per byte of weights read from flash)")
    ax.set_ylabel("MACs per second (decode, device time)")
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    head = "roofline: measured decode against the board's compute and flash-bandwidth ceilings (model inspect)"
    ax.set_title(f"{comparison.title}\n{head}" if comparison.title else head, fontsize=10)
    if missing:
        fig.text(0.01, 0.005, "not placed: " + "; ".join(missing), fontsize=7, color="#555555")
    return save(fig, path)


def ceilings_text(points: Sequence[RooflinePoint]) -> list[str]:
    """One line per point for the HTML report."""
    return [f"{p.label}: {p.decode_tokens_per_s:,.1f} tok/s of a {p.ceiling_tokens_per_s:,.0f} tok/s ceiling "
            f"({p.decode_tokens_per_s / p.ceiling_tokens_per_s:.0%}); {p.macs_per_token:,.0f} MACs and "
            f"{p.flash_bytes_per_token:,.0f} flash bytes per token" for p in points]
