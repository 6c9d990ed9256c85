"""A comparison as a rich table, GitHub markdown, CSV or JSON.

Rich and markdown are for people: one row per metric, one column per run,
each cell `median ± stddev`, the 95% interval and the delta to the baseline,
then the gate's reason per metric. CSV and JSON are tidy, one row per metric
and run, for machines.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from profiler.compare.load import Column
from profiler.compare.runs import Comparison, Verdict
from profiler.compare.stats import METRICS, Metric

FORMATS = ("rich", "md", "csv", "json")


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _mark(verdict: Verdict | None) -> str:
    if verdict is None or verdict.delta is None:
        return ""
    if verdict.regression:
        return "regression"
    if verdict.significant:
        return "worse" if verdict.worse else "better"
    return ""


def cell_parts(comparison: Comparison, metric: Metric, column: Column) -> list[str]:
    stats = comparison.cell(metric, column)
    if stats is None:
        return ["absent"]
    parts = [f"{metric.format(stats['median'])} ± {metric.format(stats['stddev'])}"]
    if stats["n"] > 1:
        parts.append(f"CI [{metric.format(stats['ci_low'])}, {metric.format(stats['ci_high'])}]")
    else:
        parts.append("1 value (summary)" if stats["source"] == "summary" else "1 value")
    verdict = comparison.verdict(metric, column)
    if verdict is not None and verdict.unchanged:
        parts.append("unchanged")
    elif verdict is not None and verdict.delta is not None:
        p = "" if verdict.p_value is None else f" p={verdict.p_value:.2g}"
        parts.append(f"{verdict.delta * 100:+.1f}%{p}")
    return parts


def metric_name(metric: Metric) -> str:
    return f"{metric.name} {'↑' if metric.higher_is_better else '↓'}"


def column_header(comparison: Comparison, column: Column) -> tuple[str, str]:
    """The column's short label with its role, and a detail line (sessions; why it is not comparable)."""
    sessions = len(column.sessions)
    alone = len(comparison.columns) == 1
    role = "baseline" if column.baseline and not alone else ""
    if column.label in comparison.not_comparable:
        role = "not comparable"
    detail = f"{sessions} session{'s' if sessions > 1 else ''}"
    return column.label + (f" ({role})" if role else ""), detail


def _title(comparison: Comparison) -> str:
    return f"{comparison.title}: " if comparison.title else ""


def legend_lines(comparison: Comparison) -> list[str]:
    """Markdown legend: each short label with its run, files, board, model, quantization and firmware."""
    from profiler.compare.reporting.labels import legend

    out = ["| label | run | board · model · quantization | firmware | sessions |", "|---|---|---|---|---|"]
    for row, column in zip(legend(comparison.columns), comparison.columns, strict=True):
        files = ", ".join(f"`{f}`" for f in row.files)
        out.append(f"| {row.label} | `{row.run}` | {column.group_label} | `{row.firmware_id}` | {files} |")
    out += [f"- {label}: {why}" for label, why in comparison.not_comparable.items()]
    return out


def gate_lines(comparison: Comparison) -> list[tuple[str, Verdict | None, str]]:
    lines: list[tuple[str, Verdict | None, str]] = [(f"{v.column} vs {v.baseline}: {v.metric.label}", v, v.reason)
                                                   for v in comparison.verdicts]
    lines += [(f"{spec}: all", None, "no valid session, nothing to check: gate fails") for spec in comparison.unchecked]
    return lines


def gate_summary(comparison: Comparison) -> str:
    """One line: how many metrics regressed, against which threshold and alpha."""
    n = len(comparison.regressions)
    head = (f"gate: {n} regression{'s' if n != 1 else ''} (worse by more than {comparison.threshold * 100:g}% "
            f"and p < {comparison.alpha:g})")
    if comparison.unchecked:
        head += f"; {len(comparison.unchecked)} run(s) without a valid session"
    if comparison.not_comparable:
        head += f"; {len(comparison.not_comparable)} not comparable, not gated"
    return head


def render_rich(comparison: Comparison, console: Console) -> None:
    """The comparison as rich tables: statistics, gate reasons, excluded sessions."""
    table = Table(title=f"{_title(comparison)}median ± stddev, 95% bootstrap CI of the median, "
                        "change vs baseline with its p-value",
                  caption="↑ higher is better, ↓ lower is better")
    table.add_column("metric")
    for column in comparison.columns:
        title, detail = column_header(comparison, column)
        table.add_column(f"{title}\n[dim]{detail}[/]", justify="right")
    for metric in METRICS:
        cells = []
        for column in comparison.columns:
            parts = cell_parts(comparison, metric, column)
            mark = _mark(comparison.verdict(metric, column))
            style = {"regression": "bold red", "worse": "yellow", "better": "green"}.get(mark, "")
            text = "\n".join(parts) if parts != ["absent"] else "[dim]absent[/]"
            cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(metric_name(metric), *cells)
    console.print(table)
    if comparison.verdicts or comparison.unchecked:
        gate = Table(title=gate_summary(comparison), show_header=True)
        gate.add_column("run vs baseline: metric")
        gate.add_column("reason")
        for what, verdict, reason in gate_lines(comparison):
            red = verdict is None or verdict.regression
            gate.add_row(what, f"[bold red]{reason}[/]" if red else reason)
        console.print(gate)
    if len(comparison.columns) > 1:
        names = Table(title="labels", show_header=True)
        for head in ("label", "run", "board · model · quantization", "firmware"):
            names.add_column(head)
        for column in comparison.columns:
            names.add_row(column.label, column.source, column.group_label, str(column.header.get("firmware_id")))
        console.print(names)
    for label, why in comparison.not_comparable.items():
        console.print(f"[yellow]{label}[/]: {why}")
    for item in comparison.excluded:
        console.print(f"[yellow]excluded[/] {item.path} ({item.status}): {'; '.join(item.reasons)}")


def render_markdown(comparison: Comparison) -> str:
    """A GitHub-flavoured markdown report (fits a job summary or a PR comment)."""
    out = [f"### tiny-profiler compare{': ' + comparison.title if comparison.title else ''}", "",
           "Median ± stddev over repetitions, 95% bootstrap CI of the median, change of the median vs the "
           "baseline with the two-sided Mann-Whitney U p-value. ↑ higher is better, ↓ lower is better.",
           ""]
    heads = [column_header(comparison, c) for c in comparison.columns]
    out.append("| metric | " + " | ".join(f"**{t}**<br><sub>{d}</sub>" for t, d in heads) + " |")
    out.append("|---|" + "---:|" * len(comparison.columns))
    for metric in METRICS:
        cells = []
        for column in comparison.columns:
            parts = cell_parts(comparison, metric, column)
            mark = _mark(comparison.verdict(metric, column))
            if mark == "regression":
                parts[-1] = f"**{parts[-1]} ❌ regression**"
            elif mark:
                parts[-1] = f"{parts[-1]} ({mark})"
            cells.append("<br>".join(parts) if parts != ["absent"] else "_absent_")
        out.append(f"| {metric_name(metric)} | " + " | ".join(cells) + " |")
    if len(comparison.columns) > 1:
        out += ["", *legend_lines(comparison)]
    if comparison.verdicts or comparison.unchecked or comparison.not_comparable:
        out += ["", f"**{gate_summary(comparison)}**", ""]
        for what, verdict, reason in gate_lines(comparison):
            flag = "❌ " if verdict is None or verdict.regression else ""
            out.append(f"- {flag}{what}: {reason}")
    if comparison.excluded:
        out += ["", "**Excluded from the statistics**", ""]
        out += [f"- `{e.path.name}` ({e.status}): {'; '.join(e.reasons)}" for e in comparison.excluded]
    return "\n".join(out) + "\n"


def tidy_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One dict per metric and run: statistics, delta, p-value, verdict."""
    rows = []
    for column in comparison.columns:
        board, model, quant = column.group
        for metric in METRICS:
            stats = comparison.cell(metric, column)
            verdict = comparison.verdict(metric, column)
            rows.append({
                "run": column.label, "run_name": column.full_name, "baseline": column.baseline,
                "comparable": column.label not in comparison.not_comparable, "board": board, "model": model,
                "quantization": quant, "firmware_id": column.header.get("firmware_id"),
                "emulated": column.header.get("emulated"), "sessions": len(column.sessions),
                "metric": metric.key, "unit": metric.unit, "better": metric.direction,
                "n": int(stats["n"]) if stats is not None else 0,
                "median": _num(stats["median"]) if stats is not None else None,
                "stddev": _num(stats["stddev"]) if stats is not None else None,
                "ci_low": _num(stats["ci_low"]) if stats is not None else None,
                "ci_high": _num(stats["ci_high"]) if stats is not None else None,
                "source": stats["source"] if stats is not None else None,
                "compared_with": verdict.baseline if verdict else None,
                "delta": verdict.delta if verdict else None,
                "p_value": verdict.p_value if verdict else None,
                "test": verdict.method if verdict else None,
                "significant": verdict.significant if verdict else None,
                "regression": verdict.regression if verdict else None,
                "reason": verdict.reason if verdict else None,
            })
    return rows


def render_csv(comparison: Comparison) -> str:
    """Tidy CSV, one line per metric and run; empty fields are absent figures."""
    rows = tidy_rows(comparison)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["run"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render_json(comparison: Comparison) -> str:
    """Rows, excluded sessions, warnings and the gate as one JSON document."""
    return json.dumps({
        "threshold": comparison.threshold,
        "alpha": comparison.alpha,
        "rows": tidy_rows(comparison),
        "gate": {"failed": comparison.gate_failed, "regressions": len(comparison.regressions),
                 "unchecked": comparison.unchecked},
        "excluded": [{"path": str(e.path), "status": e.status, "reasons": e.reasons} for e in comparison.excluded],
        "warnings": comparison.warnings,
    }, indent=2, ensure_ascii=False)


def print_warnings(comparison: Comparison) -> None:
    """Warnings (cut files, runs without a baseline) on stderr, so stdout stays machine-readable."""
    import sys

    for warning in comparison.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def print_comparison(comparison: Comparison, fmt: str = "rich") -> None:
    """Print the comparison in `fmt` on stdout; for csv and json the gate line goes to stderr."""
    import sys

    from profiler.errors import ConfigError

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}; pick one of them")
    print_warnings(comparison)
    if fmt == "rich":
        render_rich(comparison, Console())
    elif fmt == "md":
        sys.stdout.write(render_markdown(comparison))
    elif fmt == "csv":
        sys.stdout.write(render_csv(comparison))
    else:
        sys.stdout.write(render_json(comparison) + "\n")
    if fmt in ("csv", "json") and (comparison.verdicts or comparison.unchecked):
        print(gate_summary(comparison), file=sys.stderr)
        for what, verdict, reason in gate_lines(comparison):
            if verdict is None or verdict.regression:
                print(f"  {what}: {reason}", file=sys.stderr)
