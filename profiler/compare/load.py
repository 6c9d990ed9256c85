"""Session files as compare and report see them: read leniently, checked strictly.

A file cut in the middle of a line is read up to its last whole record, with a
warning. A file in another schema version is refused. A session that failed,
was interrupted or broke a validity rule is kept, so it can be listed with its
reasons, but it never enters a statistic.

Sessions are pooled into *columns*: within one RUN argument (a file or a
directory), the sessions that share a configuration (board, model, model hash,
quantization, firmware, emulated, tokens, prompt) are one column. Different
configurations are never pooled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiler.errors import ConfigError
from profiler.measure import MIN_VALID_REPETITIONS
from profiler.records import SCHEMA_VERSION

CONFIG_FIELDS = ("board", "model", "model_sha256", "quantization", "firmware_id", "emulated", "tokens", "prompt")
GROUP_FIELDS = ("board", "model", "quantization")
SESSION_START = b'{"type": "session"'


@dataclass
class SessionFile:
    """One session file: its header, its records, and whether its figures may be used."""

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]]
    status: str
    usable: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any] | None:
        """The closing summary record, or None for a file cut short."""
        return next((r for r in reversed(self.records) if r.get("type") == "summary"), None)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Records of one type, in file order."""
        return [r for r in self.records if r.get("type") == kind]

    def measured_repetitions(self) -> list[dict[str, Any]]:
        """Valid, non-warmup repetition records: the samples every statistic is taken over."""
        return [r for r in self.of_type("repetition") if not r.get("warmup") and r.get("valid")]

    @property
    def config(self) -> tuple[Any, ...]:
        """What must be equal for two sessions to be pooled."""
        return tuple(_hashable(self.header.get(name)) for name in CONFIG_FIELDS)

    @property
    def group(self) -> tuple[str, str, str]:
        """Board, model and quantization: the columns of a table are grouped by these."""
        return tuple(str(self.header.get(name, "?")) for name in GROUP_FIELDS)  # type: ignore[return-value]


@dataclass
class Column:
    """The pooled valid sessions of one configuration from one RUN argument."""

    label: str
    source: str
    sessions: list[SessionFile]
    baseline: bool = False
    full_name: str = ""  # the run name with the configuration that split it, before short labels

    @property
    def header(self) -> dict[str, Any]:
        """The first session's header (all sessions of a column share their configuration)."""
        return self.sessions[0].header

    @property
    def group(self) -> tuple[str, str, str]:
        """Board, model and quantization."""
        return self.sessions[0].group

    @property
    def group_label(self) -> str:
        """`board · model · quantization`, with `(emulated)` after an emulated board."""
        board, model, quant = self.group
        return f"{board}{' (emulated)' if self.header.get('emulated') else ''} · {model} · {quant}"


@dataclass
class Excluded:
    """A session listed but left out of the statistics, and why."""

    source: str
    path: Path
    status: str
    reasons: list[str]


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _cut_warning(path: Path, lineno: int, kept: int, after: int) -> str:
    if after == 0:
        return f"{path}: last line (line {lineno}) is cut short; read the {kept} records before it"
    return (f"{path}: line {lineno} is not a JSON record; read the {kept} records before it "
            f"and ignored the {after} lines after it")


def read_session_file(path: Path) -> SessionFile:
    """Read one session file up to its last good record and decide whether it may be used."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror}); check the path") from None
    lines = [line for line in lines if line.strip()]
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "type" not in record:
            if i == 0 and record is not None:
                raise ConfigError(f"{path}: first line is JSON but not a session header; "
                                  "pass files written by `tiny-profiler run`")
            warnings.append(_cut_warning(path, i + 1, len(records), len(lines) - i - 1))
            break
        records.append(record)
    if not records:
        return SessionFile(path, {}, [], "empty", False, ["file holds no complete record"], warnings)
    header = records[0]
    if header["type"] != "session":
        raise ConfigError(f"{path}: first record is '{header['type']}', not a session header; "
                          "pass files written by `tiny-profiler run`")
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{path}: schema_version {version!r} is not one this profiler reads "
                          f"(it reads {SCHEMA_VERSION}); use the tiny-profiler version that wrote it")
    session = SessionFile(path, header, records[1:], "ok", True, [], warnings)
    _judge(session)
    return session


def _judge(session: SessionFile) -> None:
    summary = session.summary
    if summary is not None:
        session.status = str(summary.get("status"))
        session.usable = bool(summary.get("valid")) and session.status == "ok"
        session.reasons = [str(r) for r in summary.get("reasons") or []]
        if not session.usable and not session.reasons:
            session.reasons = [f"summary status {session.status}, valid {summary.get('valid')}"]
        return
    errors = session.of_type("error")
    if errors:
        session.status = "interrupted" if errors[-1].get("kind") == "interrupted" else "failed"
        session.usable = False
        session.reasons = [f"{errors[-1].get('kind')}: {errors[-1].get('message')}"]
        return
    reps = [r for r in session.of_type("repetition") if not r.get("warmup")]
    good = [r for r in reps if r.get("valid")]
    session.status = "truncated"
    if len(good) >= MIN_VALID_REPETITIONS and len(good) == len(reps):
        session.warnings.append(f"{session.path}: no summary record (file cut short); "
                                f"using its {len(good)} complete, valid repetitions")
    else:
        session.usable = False
        bad = [f"repetition {r.get('repetition')}: {'; '.join(r.get('reasons') or [])}" for r in reps if r not in good]
        session.reasons = [f"file cut short after {len(good)} valid repetitions "
                           f"({MIN_VALID_REPETITIONS} needed) and no summary", *bad]


def _is_session_file(path: Path) -> bool:
    # The JSONL sink writes `type` first, so a session file starts with these bytes; trace spans do not.
    with path.open("rb") as handle:
        return handle.read(len(SESSION_START)) == SESSION_START


def session_paths(spec: Path) -> list[Path]:
    """A file, or the session files directly inside a directory, sorted by name (= start time).

    In a directory, `.jsonl` files that do not start with a session header (trace spans, logs) are skipped.
    """
    if spec.is_dir():
        paths = [p for p in sorted(spec.glob("*.jsonl")) if p.is_file() and _is_session_file(p)]
        if not paths:
            raise ConfigError(f"{spec}: directory holds no session JSONL files; pass a file or a results directory")
        return paths
    if not spec.exists():
        raise ConfigError(f"{spec}: no such file or directory; pass session JSONL files written by `tiny-profiler run`")
    return [spec]


def _label(spec: Path) -> str:
    name = spec.name if spec.is_dir() else spec.stem
    return name or str(spec)


def load_columns(spec: Path, baseline: bool = False) -> tuple[list[Column], list[Excluded], list[str]]:
    """The columns, excluded sessions and warnings of one RUN argument."""
    sessions = [read_session_file(p) for p in session_paths(spec)]
    warnings = [w for s in sessions for w in s.warnings]
    excluded = [Excluded(str(spec), s.path, s.status, s.reasons) for s in sessions if not s.usable]
    pooled: dict[tuple[Any, ...], list[SessionFile]] = {}
    for session in sessions:
        if session.usable:
            pooled.setdefault(session.config, []).append(session)
    base = _label(spec)
    columns = [Column(base, str(spec), members, baseline) for members in pooled.values()]
    if len(columns) > 1:
        differing = [i for i, _ in enumerate(CONFIG_FIELDS) if len({c.sessions[0].config[i] for c in columns}) > 1]
        for column in columns:
            parts = [_short(CONFIG_FIELDS[i], column.sessions[0].config[i]) for i in differing]
            column.label = f"{base} [{' '.join(parts)}]"
    return columns, excluded, warnings


def _short(name: str, value: Any) -> str:
    if name == "model_sha256":
        return f"sha {str(value)[:8]}"
    if name in ("emulated",):
        return "emulated" if value else "hardware"
    if name in ("tokens", "prompt"):
        return f"{name} {str(value)[:16]}"
    return str(value)

