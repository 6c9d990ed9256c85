"""Baselines for the CI gate: accepted sessions, one per (board, emulated or not, model, quantization).

`tiny-profiler baseline accept RUN_DIR` copies each valid session of a run to
`results/baselines/<board>[-emulated]--<model>--<quantization>.jsonl`,
replacing the one there (a run with several valid sessions of one key gives
its latest). `bench --baseline DIR` sets each valid session of its run
against the baseline of its key with `compare`'s statistics, one comparison
per key, so an emulated baseline never stands in for a real board.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from profiler.compare.format import gate_summary, render_markdown
from profiler.compare.load import SessionFile, read_session_file, session_paths
from profiler.compare.runs import DEFAULT_ALPHA, Comparison, compare_runs
from profiler.errors import ConfigError


def baseline_name(session: SessionFile) -> str:
    """`stm32f405-emulated--demo--int8.jsonl`: the file a session's baseline lives in."""
    header = session.header
    board = f"{header.get('board', '?')}{'-emulated' if header.get('emulated') else ''}"
    parts = [board, str(header.get("model", "?")), str(header.get("quantization", "?"))]
    return "--".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts) + ".jsonl"


def _valid_sessions(run_dir: Path) -> tuple[list[SessionFile], list[SessionFile]]:
    sessions = [read_session_file(p) for p in session_paths(run_dir)]
    return [s for s in sessions if s.usable], [s for s in sessions if not s.usable]


@dataclass(frozen=True)
class Accepted:
    """One baseline written by `accept`."""

    source: Path
    target: Path
    replaced: bool


def accept(run_dir: Path, baselines: Path) -> tuple[list[Accepted], list[str]]:
    """Copy the valid sessions of `run_dir` into `baselines`; what was written and what was left out, and why."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory; pass the run directory `bench` wrote")
    valid, invalid = _valid_sessions(run_dir)
    notes = [f"{s.path.name} left out ({s.status}: {'; '.join(s.reasons)})" for s in invalid]
    if not valid:
        raise ConfigError(f"{run_dir} holds no valid session ({'; '.join(notes) or 'none'}); "
                          "accept a run whose sessions are valid")
    latest: dict[str, SessionFile] = {}
    for session in valid:  # sorted by file name, i.e. start time: the latest of a key wins
        if session.header and baseline_name(session) in latest:
            notes.append(f"{latest[baseline_name(session)].path.name} superseded by {session.path.name}")
        latest[baseline_name(session)] = session
    baselines.mkdir(parents=True, exist_ok=True)
    written = []
    for name, session in latest.items():
        target = baselines / name
        replaced = target.exists()
        staging = target.with_suffix(".jsonl.tmp")
        shutil.copyfile(session.path, staging)
        staging.replace(target)
        written.append(Accepted(session.path, target, replaced))
    return written, notes


@dataclass
class Gate:
    """The gate's verdict over a run: one comparison per baseline key."""

    comparisons: list[Comparison] = field(default_factory=list)
    ungated: list[str] = field(default_factory=list)  # session files without a baseline

    @property
    def failed(self) -> bool:
        """A significant regression beyond the threshold in any key."""
        return any(c.gate_failed for c in self.comparisons)

    def regression_lines(self) -> list[str]:
        """One line per regressed metric, naming it."""
        return [f"regression: {c.columns[-1].group_label if c.columns else '?'}: {v.metric.name}: {v.reason}"
                for c in self.comparisons for v in c.regressions]

    def headline(self) -> str:
        """One line: how many keys were checked and how many regressed."""
        bad = sum(1 for c in self.comparisons if c.gate_failed)
        text = f"gate: {len(self.comparisons)} configuration(s) checked against baselines, {bad} regressed"
        if self.ungated:
            text += f"; {len(self.ungated)} session(s) without a baseline (not gated)"
        return text

    def markdown(self) -> str:
        """The gate for summary.md: compare's markdown per key."""
        out = ["## Regression gate", "", f"**{self.headline()}**", ""]
        for comparison in self.comparisons:
            out += [gate_summary(comparison), "", render_markdown(comparison)]
        out += [f"- no baseline for `{name}`: not gated" for name in self.ungated]
        return "\n".join(out) + "\n"


def gate(run_dir: Path, baselines: Path, threshold: float, alpha: float = DEFAULT_ALPHA,
         only: Sequence[Path] | None = None) -> Gate:
    """Set each valid session of the run (or of `only`) against the baseline of its key."""
    if not baselines.is_dir():
        raise ConfigError(f"baseline directory {baselines} not found; record one with "
                          "`tiny-profiler baseline accept RUN_DIR`")
    valid, _ = _valid_sessions(run_dir) if only is None else ([read_session_file(p) for p in only], [])
    by_key: dict[str, list[SessionFile]] = {}
    for session in valid:
        if session.usable:
            by_key.setdefault(baseline_name(session), []).append(session)
    result = Gate()
    for name, sessions in by_key.items():
        base = baselines / name
        if not base.is_file():
            result.ungated += [s.path.name for s in sessions]
            continue
        with tempfile.TemporaryDirectory(prefix="tiny-profiler-gate-") as tmp:
            # compare takes directories: give it this key's sessions alone, under the run's own name
            run_view = Path(tmp) / run_dir.name
            run_view.mkdir()
            for session in sessions:
                (run_view / session.path.name).symlink_to(session.path.resolve())
            result.comparisons.append(compare_runs([run_view], base, threshold, alpha))
    return result
