"""Outputs for CI systems: JUnit XML (`--junit FILE`) and summary rows as json, csv or md (`--format`).

A session is one JUnit testcase: it passes when valid, fails with the validity
reasons when invalid, and is an error with the message when it stopped early.
In `compare` every gated metric of every run is a testcase that fails when it
regressed. Rows are flat dicts in the spirit of llama-bench's `-o`: the run's
identity first, then the device-timed figures.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from profiler.errors import ConfigError

if TYPE_CHECKING:
    from profiler.bench.run import BenchRun, SessionResult
    from profiler.compare.runs import Comparison

FORMATS = ("json", "csv", "md")
FIGURES = ("decode_tokens_per_s", "decode_tokens_per_s_stddev", "prefill_tokens_per_s", "ttft_ms",
           "token_latency_ms_p50", "token_latency_ms_p95", "peak_ram_bytes", "energy_mj_per_token", "avg_power_mw",
           "decode_instructions_per_token", "reference_match")


def check_format(fmt: str | None) -> None:
    """Refuse an unknown `--format` before anything runs."""
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def read_header(jsonl: Path) -> dict[str, Any]:
    """The session header (first line) of a session file, or {} when there is none."""
    try:
        with jsonl.open(encoding="utf-8") as lines:
            first = json.loads(lines.readline() or "{}")
    except (OSError, ValueError):
        return {}
    return first if first.get("type") == "session" else {}


def run_identity(header: dict[str, Any], results: Path) -> dict[str, Any]:
    """What ran where, from the session header: the `jq .board` a CI step wants."""
    firmware_id = str(header.get("firmware_id") or "")
    return {
        "board": header.get("board"), "family": header.get("platform"), "device": header.get("device"),
        "emulated": header.get("emulated"), "model": header.get("model"), "model_sha256": header.get("model_sha256"),
        "quantization": header.get("quantization"), "firmware_id": firmware_id or None,
        "kernels": firmware_id.rsplit("+", 1)[1] if "+" in firmware_id else None,
        "tokens": header.get("tokens"), "prompt_tokens": len(header.get("prompt_tokens") or []),
        "results": str(results),
    }


def run_row(identity: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """One run's summary row: identity, status, validity and the figures."""
    return {**identity, "status": summary.get("status"), "valid": summary.get("valid"),
            "reasons": "; ".join(summary.get("reasons") or []), **{k: summary.get(k) for k in FIGURES}}


def bench_rows(run: BenchRun) -> list[dict[str, Any]]:
    """One row per session of a bench run (summary.json's session entries, reasons joined)."""
    rows = []
    for result in run.results:
        row = result.to_dict(run.run_dir)
        row["reasons"] = "; ".join(row.get("reasons") or [])
        rows.append(row)
    return rows


def format_rows(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """The rows as a JSON array, CSV with a header line, or a Markdown table."""
    if fmt == "json":
        return json.dumps(list(rows), ensure_ascii=False)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
                      *("| " + " | ".join(line) + " |" for line in cells)])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value).replace("|", "\\|")


def _session_case(name: str, classname: str, status: str, reasons: Iterable[str], error: str | None,
                  wall_s: float | None, details: dict[str, Any]) -> TestCase:
    case = TestCase(name, classname, round(wall_s, 3) if wall_s is not None else None)
    why = "; ".join(reasons)
    if status == "invalid":
        case.result = [Failure(why or "the session broke a validity rule", "invalid")]
    elif status in ("failed", "error"):
        case.result = [Error(error or why or "the session stopped early", "failed")]
    elif status in ("interrupted", "not run"):
        case.result = [Skipped(error or status, status)]
    case.system_out = json.dumps(details, ensure_ascii=False)
    return case


def _write(path: Path, suite: TestSuite) -> None:
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.update_statistics()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        xml.write(str(path), pretty=True)
    except OSError as exc:
        raise ConfigError(f"cannot write --junit {path}: {exc.strerror}; pass a writable path") from None


def write_run_junit(path: Path, identity: dict[str, Any], summary: dict[str, Any], error: str | None = None) -> None:
    """One testcase: the session."""
    status = str(summary.get("status") or "failed")
    if status == "ok" and not summary.get("valid"):
        status = "invalid"
    elif status not in ("ok", "invalid", "interrupted"):
        status = "failed"  # the summary of a session that stopped early names its error kind
    wall = sum((summary.get("host_ms") or {}).values()) / 1000 if summary.get("host_ms") else None
    suite = TestSuite("tiny-profiler run")
    suite.add_testcase(_session_case(
        f"{identity.get('board')} · {identity.get('model')} · {identity.get('quantization')}",
        f"tiny-profiler.run.{identity.get('family')}", status, summary.get("reasons") or [], error, wall,
        run_row(identity, summary)))
    _write(path, suite)


def write_stopped_run_junit(path: Path, jsonl: Path) -> None:
    """The testcase of a session that stopped early, from its file's `error` and `summary` records."""
    records: list[dict[str, Any]] = []
    with contextlib.suppress(OSError, ValueError):
        records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    summary = next((r for r in reversed(records) if r.get("type") == "summary"), {"status": "failed"})
    error: dict[str, Any] = next((r for r in reversed(records) if r.get("type") == "error"), {})
    message = f"{error.get('kind', 'error')}: {error.get('message')}" if error else "the session stopped early"
    write_run_junit(path, run_identity(read_header(jsonl), jsonl), summary, message)


def write_bench_junit(path: Path, run: BenchRun) -> None:
    """One testcase per session of the plan, named by board and session label."""
    suite = TestSuite(f"tiny-profiler bench {run.plan.path.name}")
    for result, row in zip(run.results, bench_rows(run), strict=True):
        suite.add_testcase(_bench_case(result, row))
    _write(path, suite)


def _bench_case(result: SessionResult, row: dict[str, Any]) -> TestCase:
    reasons = (result.summary or {}).get("reasons") or []
    return _session_case(f"{result.spec.board.name} · {result.spec.label}",
                         f"tiny-profiler.bench.run.{result.spec.board.name}", result.status, reasons, result.error,
                         result.wall_s, row)


def write_compare_junit(path: Path, comparison: Comparison) -> None:
    """One testcase per gated metric and run; runs with nothing valid and excluded sessions as well."""
    suite = TestSuite("tiny-profiler compare")
    for verdict in comparison.verdicts:
        case = TestCase(f"{verdict.metric.key} · {verdict.column}", f"tiny-profiler.compare.runs.{verdict.baseline}")
        if verdict.regression:
            case.result = [Failure(verdict.reason, "regression")]
        case.system_out = json.dumps({"metric": verdict.metric.key, "column": verdict.column,
                                      "baseline": verdict.baseline, "delta": verdict.delta,
                                      "p_value": verdict.p_value, "method": verdict.method, "reason": verdict.reason})
        suite.add_testcase(case)
    for source in comparison.unchecked:
        case = TestCase(f"{source} · valid sessions", "tiny-profiler.compare.runs")
        case.result = [Failure(f"{source} has no valid session to compare", "no valid session")]
        suite.add_testcase(case)
    for excluded in comparison.excluded:
        case = TestCase(f"{excluded.path.name}", "tiny-profiler.compare.runs.excluded")
        case.result = [Skipped("; ".join(excluded.reasons) or excluded.status, excluded.status)]
        suite.add_testcase(case)
    _write(path, suite)
