"""The end of a bench run: summary.json, summary.md (a llama-bench-like table), the gate, the exit code."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from profiler import __version__
from profiler.bench.plan import load_plan
from profiler.bench.run import BenchOptions, BenchRun, SessionResult, convert_checkpoints, prepare_firmware
from profiler.compare.baseline import Gate, gate
from profiler.errors import Interrupted

SUMMARY_SCHEMA = 1


def _num(value: Any, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "-"


def _row(result: SessionResult) -> list[str]:
    spec, s = result.spec, result.summary or {}
    decode = _num(s.get("decode_tokens_per_s"))
    if decode != "-":
        decode += f" ± {_num(s.get('decode_tokens_per_s_stddev') or 0.0)}"
    peak = s.get("peak_ram_bytes")
    where = f"{spec.board.name}" + (" (emulated)" if spec.board.emulated else "")
    valid = "✅ ok" if result.status == "ok" else f"❌ {result.status}"
    return [where, spec.model.label, spec.model.quantization, str(spec.tokens), _num(s.get("prefill_tokens_per_s")),
            decode, _num(s.get("ttft_ms"), 1), _num(s.get("energy_mj_per_token"), 3),
            _num(peak / 1024, 1) if isinstance(peak, (int, float)) else "-", valid]


HEADERS = ["board", "model", "quant", "tokens", "prefill tok/s", "decode tok/s", "TTFT ms", "mJ/token",
           "peak RAM KB", "valid"]


def summary_markdown(run: BenchRun, gate_result: Gate | None) -> str:
    """summary.md: the table, what failed and why, and the gate."""
    results = run.results
    ok = sum(1 for r in results if r.status == "ok")
    out = [f"# tiny-profiler bench: {run.plan.path.name}", "",
           f"{len(results)} sessions on {len(run.boards)} boards: {ok} ok, {len(results) - ok} not ok"
           f"{' (interrupted)' if run.interrupted else ''}; wall time {run.wall_s:.1f} s with --jobs "
           f"{run.options.jobs}; run directory `{run.run_dir}`; host {socket.gethostname()}; "
           f"tiny-profiler {__version__}.", "",
           "Device-timed medians over the measured repetitions; decode excludes the first token.", "",
           "| " + " | ".join(HEADERS) + " |", "|" + "---|" * 3 + "---:|" * 6 + "---|"]
    out += ["| " + " | ".join(_row(r)) + " |" for r in results]
    problems = [r for r in results if r.status != "ok"]
    if problems:
        out += ["", "**Not ok**", ""]
        for r in problems:
            why = r.error or "; ".join((r.summary or {}).get("reasons") or []) or r.status
            where = f" (`{r.jsonl.name}`)" if r.jsonl else ""
            out.append(f"- {r.spec.board.name}, {r.spec.label}: {r.status}: {why}{where}")
    if gate_result is not None:
        out += ["", gate_result.markdown()]
    return "\n".join(out) + "\n"


def summary_json(run: BenchRun, gate_result: Gate | None, exit_code: int) -> dict[str, Any]:
    """summary.json: every session's figures and how the run ended."""
    results = run.results
    return {
        "schema": SUMMARY_SCHEMA, "plan": str(run.plan.path), "run_dir": str(run.run_dir),
        "started_at": run.started_at.isoformat(timespec="seconds"), "wall_s": round(run.wall_s, 3),
        "host": socket.gethostname(), "profiler_version": __version__, "jobs": run.options.jobs,
        "boards": [b.name for b in run.plan.boards], "interrupted": run.interrupted,
        "sessions": [r.to_dict(run.run_dir) for r in results],
        "ok": sum(1 for r in results if r.status == "ok"), "not_ok": sum(1 for r in results if r.status != "ok"),
        "gate": None if gate_result is None else {
            "failed": gate_result.failed, "regressions": gate_result.regression_lines(),
            "ungated": gate_result.ungated, "checked": len(gate_result.comparisons)},
        "exit_code": exit_code,
    }


def console_table(run: BenchRun) -> Table:
    """The same table for the terminal."""
    table = Table(title="bench summary (device-timed medians)")
    for i, head in enumerate(HEADERS):
        table.add_column(head, justify="right" if 3 <= i <= 8 else "left")
    for result in run.results:
        table.add_row(*_row(result))
    return table


@dataclass(frozen=True)
class GateOptions:
    """`--baseline DIR --threshold 5% --fail-on-regression`."""

    baselines: Path
    threshold: float
    alpha: float
    fail_on_regression: bool


def bench(plan_path: Path, options: BenchOptions, only: list[str] | None, gate_options: GateOptions | None,
          console: Console, hardware_map: Path | None = None,
          outputs: Callable[[BenchRun], None] | None = None) -> int:
    """Run a plan end to end; the exit code (0 all ok, 1 a session not ok or a regression, 130 interrupted)."""
    plan = load_plan(plan_path, only, hardware_map)
    if gate_options is not None and not gate_options.baselines.is_dir():
        from profiler.errors import ConfigError

        raise ConfigError(f"baseline directory {gate_options.baselines} not found; record one with "
                          "`tiny-profiler baseline accept RUN_DIR`")
    run_dir = options.out
    prepare_firmware(plan)
    convert_checkpoints(plan, run_dir, console)
    console.print(f"bench {plan_path}: {plan.total} sessions on {len(plan.boards)} boards "
                  f"({', '.join(b.name for b in plan.boards)}), --jobs {options.jobs} for emulated boards; "
                  f"run directory {run_dir}", highlight=False)
    run = BenchRun(plan, options, run_dir, console).run()
    gate_result = None
    if gate_options is not None:
        jsonls = [r.jsonl for r in run.results if r.status == "ok" and r.jsonl is not None]
        gate_result = gate(run_dir, gate_options.baselines, gate_options.threshold, gate_options.alpha, only=jsonls)
    failed = any(r.status != "ok" for r in run.results)
    regressed = gate_result is not None and gate_result.failed and gate_options is not None \
        and gate_options.fail_on_regression
    exit_code = Interrupted.exit_code if run.interrupted else (1 if failed or regressed else 0)
    (run_dir / "summary.json").write_text(json.dumps(summary_json(run, gate_result, exit_code), indent=2,
                                                     ensure_ascii=False) + "\n", encoding="utf-8")
    (run_dir / "summary.md").write_text(summary_markdown(run, gate_result), encoding="utf-8")
    console.print(console_table(run))
    if gate_result is not None:
        console.print(gate_result.headline(), highlight=False)
        for line in gate_result.regression_lines():
            console.print(f"[red]{line}[/]", highlight=False)
    console.print(f"wrote {os.path.join(run_dir, 'summary.md')} and summary.json "
                  f"({run.wall_s:.1f} s)", highlight=False)
    if outputs is not None:  # --format, --junit
        outputs(run)
    return exit_code


def default_run_dir(results: Path = Path("results")) -> Path:
    """results/bench-<UTC time>."""
    return results / f"bench-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
