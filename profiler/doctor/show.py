"""Printing `tiny-profiler doctor`: a table grouped by area, or JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from profiler.doctor.checks import emulated_default_ready, rows_by_group, run_checks

_STYLE = {"ok": "green", "missing": "red", "note": "dim"}


def show_doctor(json_out: bool, pushgateway: str | None, otlp: str | None, results: Path,
                console: Console | None = None) -> bool:
    """Run every check, print them; True when the emulated default can run."""
    rows = run_checks(pushgateway, otlp, results)
    ready = emulated_default_ready(rows)
    if json_out:
        print(json.dumps({"emulated_default_ready": ready, "checks": [row.to_dict() for row in rows]}))
        return ready
    console = console or Console()
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("area", "check", "status", "found / fix"):
        table.add_column(column, overflow="fold")
    for group, members in rows_by_group(rows):
        for index, row in enumerate(members):
            status = f"[{_STYLE[row.status]}]{row.status}[/]" + (" *" if row.required else "")
            found = escape(row.detail) + ("" if row.fix is None else f"\n[bold]fix:[/] {escape(row.fix)}")
            table.add_row(group if index == 0 else "", escape(row.name), status, found)
        table.add_section()
    console.print(table)
    missing = [row for row in rows if row.status == "missing"]
    blocking = [row for row in missing if row.required]
    console.print("* needed by the emulated default (make demo)")
    if blocking:
        console.print(f"[red]the emulated default cannot run[/]: {', '.join(r.name for r in blocking)} "
                      "missing (fixes above)")
    else:
        console.print(f"[green]the emulated default can run[/]; {len(missing)} other gap(s) listed above "
                      "matter only for real boards, monitoring or reports")
    return ready
