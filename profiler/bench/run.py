"""`tiny-profiler bench PLAN.toml`: every board of a plan in parallel, its sessions one after another.

One worker thread per board drives that board's sessions in order, each in a
child process (`profiler.bench.worker`); emulated boards share `--jobs`
slots, real boards each have their own. A labgrid place is acquired by its
worker before the first session and released after the last. The live view
reads progress from the session files as they are written (one direction:
nothing reaches into a session). At the end: `summary.json`, `summary.md`
and, with `--baseline`, the regression gate of `compare`.

Ctrl-C (or SIGTERM, as CI sends on cancel) sends every running session one
SIGINT, so each ends its file with an `error` and a `summary` record, lets
no new session start, releases every place and still writes the summaries.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import Progress, TaskID
from rich.table import Table

from profiler.bench.plan import ModelSpec, Plan, PlanBoard, SessionSpec
from profiler.errors import Interrupted, ProfilerError
from profiler.sinks.console import progress_columns

_POLL_S = 0.25
_STOP_GRACE_S = 60.0


@dataclass(frozen=True)
class BenchOptions:
    """What `bench` was asked beyond the plan."""

    out: Path
    jobs: int
    sink_options: dict[str, Any] = field(default_factory=dict)  # by name, as the sink kinds declare them
    strict_export: bool = False
    log_level: str = "info"


@dataclass
class SessionResult:
    """How one session of the plan ended."""

    spec: SessionSpec
    status: str  # ok | invalid | failed | interrupted | not run
    exit_code: int | None = None
    jsonl: Path | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    wall_s: float = 0.0

    def to_dict(self, run_dir: Path) -> dict[str, Any]:
        """The session's row in summary.json."""
        spec, summary = self.spec, self.summary or {}
        keys = ("prefill_tokens_per_s", "decode_tokens_per_s", "decode_tokens_per_s_stddev", "ttft_ms",
                "token_latency_ms_p50", "token_latency_ms_p95", "peak_ram_bytes", "energy_mj_per_token",
                "avg_power_mw", "decode_instructions_per_token", "reference_match", "predicted_decode_tokens_per_s",
                "predicted_cycles_per_token", "ipc1_decode_tokens_per_s", "cycle_model")
        return {
            "board": spec.board.name, "device": spec.board.device, "emulated": spec.board.emulated,
            "model": spec.model.label, "quantization": spec.model.quantization, "prompt": spec.prompt,
            "tokens": spec.tokens, "repeat": spec.repeat, "warmup": spec.warmup, "kernels": spec.kernels,
            "power": spec.power, "check_quality": spec.check_quality, "temperature": spec.temperature,
            "seed": spec.seed, "status": self.status, "valid": bool(summary.get("valid")),
            "reasons": summary.get("reasons") or [],
            "exit_code": self.exit_code, "error": self.error, "wall_s": round(self.wall_s, 3),
            "jsonl": os.path.relpath(self.jsonl, run_dir) if self.jsonl else None,
            **{k: summary.get(k) for k in keys},
        }


@dataclass
class BoardState:
    """What the live view shows for one board."""

    board: PlanBoard
    total: int
    done: int = 0
    state: str = "waiting"
    current: str = ""
    progress: str = ""
    last_rate: float | None = None
    failed: int = 0
    results: list[SessionResult] = field(default_factory=list)
    spec: SessionSpec | None = None  # the session running now
    tokens_now: int = 0  # tokens its board has generated so far (warmup included): the overall bar's unit

    @property
    def tokens_done(self) -> int:
        """Tokens of the finished sessions (as planned) and of the one running."""
        return sum(work(r.spec) for r in self.results) + (self.tokens_now if self.state == "running" else 0)


def work(spec: SessionSpec) -> int:
    """Tokens a session generates, warmup included: the overall progress bar's unit of work."""
    return (spec.warmup + spec.repeat) * spec.tokens


@dataclass
class BenchRun:
    """A bench run in progress, then its outcome."""

    plan: Plan
    options: BenchOptions
    run_dir: Path
    console: Console
    boards: dict[str, BoardState] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    wall_s: float = 0.0
    _children: dict[int, subprocess.Popen[str]] = field(default_factory=dict)
    _children_lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: threading.Semaphore | None = None
    # One bar over every session's tokens, with an ETA (drawn inside the live view, so never started itself).
    _overall: Progress = field(default_factory=lambda: Progress(*progress_columns(), auto_refresh=False))
    _overall_task: TaskID | None = None

    @property
    def results(self) -> list[SessionResult]:
        """Every session's result, board by board in plan order."""
        return [r for state in self.boards.values() for r in state.results]

    @property
    def interrupted(self) -> bool:
        """True when the run was stopped by Ctrl-C or SIGTERM."""
        return self.cancel.is_set()

    # -- running -------------------------------------------------------------

    def run(self) -> BenchRun:
        """Run every board's sessions; returns when all workers are done (Ctrl-C included)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        self._slots = threading.Semaphore(max(1, self.options.jobs))
        for board in self.plan.boards:
            self.boards[board.name] = BoardState(board, len(self.plan.sessions[board.name]))
        workers = [threading.Thread(target=self._board_worker, args=(state,), name=f"bench-{name}", daemon=True)
                   for name, state in self.boards.items()]
        t0 = time.monotonic()
        for worker in workers:
            worker.start()
        live_console = self.console
        self._overall_task = self._overall.add_task("sessions", total=sum(
            work(spec) for specs in self.plan.sessions.values() for spec in specs), rate="")
        with Live(self._view(), console=live_console, refresh_per_second=4, transient=False,
                  redirect_stdout=False, redirect_stderr=False) as live:
            self._wait(workers, live)
        self.console.print()
        self.wall_s = time.monotonic() - t0
        return self

    def _wait(self, workers: list[threading.Thread], live: Live) -> None:
        deadline: float | None = None
        while any(w.is_alive() for w in workers):
            try:
                live.update(self._view())
                time.sleep(_POLL_S)
                if deadline is not None and time.monotonic() > deadline:
                    self._kill_children()
                    deadline = None
            except KeyboardInterrupt:
                if not self.cancel.is_set():
                    self.stop()
                    deadline = time.monotonic() + _STOP_GRACE_S
        live.update(self._view())

    def stop(self) -> None:
        """Stop the run: no new session starts, each running one gets one SIGINT and closes its file."""
        with self._children_lock:
            self.cancel.set()
            for child in self._children.values():
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGINT)
        self.console.print("[yellow]stopping: every running session closes its file; Ctrl-C again is ignored "
                           f"for up to {_STOP_GRACE_S:.0f} s[/]")

    def _kill_children(self) -> None:
        with self._children_lock:
            for child in self._children.values():
                with contextlib.suppress(ProcessLookupError):
                    child.kill()

    def _board_worker(self, state: BoardState) -> None:
        sessions = self.plan.sessions[state.board.name]
        lease = None
        port = state.board.port
        try:
            if state.board.place and not self.cancel.is_set():
                from profiler.lab.labgrid_place import acquire_place

                state.state, state.current = "acquiring", f"labgrid place {state.board.place}"
                lease = acquire_place(state.board.place, self.plan.coordinator)
                port = lease.port
            for spec in sessions:
                result = self._one(state, spec, port, lease.device if lease else None)
                state.results.append(result)
                state.tokens_now = 0
                state.done += 1
                if result.status != "ok":
                    state.failed += 1
                self._report(state, result)
        except ProfilerError as exc:  # the place could not be had: every session of the board fails with why
            for spec in sessions[len(state.results):]:
                state.results.append(SessionResult(spec, "failed", exc.exit_code, error=str(exc)))
                state.failed += 1
            self.console.print(f"[red]{state.board.name}: {exc}[/]", markup=True, highlight=False)
        except Exception as exc:  # a bug in the bench itself: the other boards go on
            for spec in sessions[len(state.results):]:
                state.results.append(SessionResult(spec, "failed", 70, error=f"internal error {exc!r}"))
                state.failed += 1
        finally:
            if lease is not None:
                try:
                    lease.close()
                except ProfilerError as exc:
                    self.console.print(f"[red]{state.board.name}: {exc}[/]")
            state.state = "interrupted" if self.cancel.is_set() else ("failed" if state.failed else "done")
            state.current = ""

    def _one(self, state: BoardState, spec: SessionSpec, port: str | None, device: str | None) -> SessionResult:
        if self.cancel.is_set():
            return SessionResult(spec, "not run", error="the bench was interrupted before it started")
        slot = self._slots if state.board.emulated else None
        if slot is not None:
            state.state, state.current = "queued", spec.label
            while not slot.acquire(timeout=_POLL_S):
                if self.cancel.is_set():
                    return SessionResult(spec, "not run", error="the bench was interrupted before it started")
        try:
            return self._child(state, spec, port, device)
        finally:
            if slot is not None:
                slot.release()

    def _spec_json(self, spec: SessionSpec, port: str | None, device: str | None) -> str:
        board = spec.board
        run = {
            "device": board.device or device, "model": str(self._model_path(spec.model)), "prompt": spec.prompt,
            "tokens": spec.tokens, "repeat": spec.repeat, "warmup": spec.warmup, "seed": spec.seed,
            "temperature": spec.temperature, "out": str(self.run_dir), "emulate": board.emulate,
            "port": port, "flash": spec.flash, "board": board.board,
            "hardware_map": str(self.plan.hardware_map) if self.plan.hardware_map else None,
            "flasher": board.flasher, "kernels": spec.kernels, "power": spec.power,
            "check_quality": spec.check_quality,
            "predict": True,  # bench always predicts the real chip's rate on emulated boards (a no-op elsewhere)
        }
        observability = {**self.options.sink_options, "strict_export": self.options.strict_export,
                         "log_level": self.options.log_level,
                         "log_file": str(self.run_dir / "logs" / "profiler.jsonl")}
        return json.dumps({"run": run, "observability": observability, "label": board.name,
                           "plan": str(self.plan.path)})

    def _model_path(self, model: ModelSpec) -> Path:
        return self.run_dir / "models" / model.converted_name() if model.checkpoint else model.path

    def _child(self, state: BoardState, spec: SessionSpec, port: str | None, device: str | None) -> SessionResult:
        state.state, state.current, state.progress = "running", spec.label, "starting"
        state.spec, state.tokens_now = spec, 0
        index = len(state.results) + 1
        log_path = self.run_dir / "logs" / f"{state.board.name}-{index}.log"
        t0 = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as log:
            with self._children_lock:
                if self.cancel.is_set():
                    return SessionResult(spec, "not run", error="the bench was interrupted before it started")
                child = subprocess.Popen([sys.executable, "-m", "profiler.bench.worker",
                                          self._spec_json(spec, port, device)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
                                         start_new_session=True, preexec_fn=_term_with_parent)
                self._children[child.pid] = child
            try:
                jsonl, summary = self._follow(state, child)
            finally:
                with self._children_lock:
                    self._children.pop(child.pid, None)
        code = child.returncode
        error = _last_error(log_path)
        status = str(summary.get("status")) if summary else _status_from_file(jsonl, code)
        return SessionResult(spec, status, code, jsonl, summary or _summary_from_file(jsonl), error,
                             time.monotonic() - t0)

    def _follow(self, state: BoardState, child: subprocess.Popen[str]) -> tuple[Path | None, dict[str, Any] | None]:
        assert child.stdout is not None
        first = child.stdout.readline().strip()
        jsonl = Path(first.split(": ", 1)[1]) if first.startswith("jsonl: ") else None
        summary: dict[str, Any] | None = None
        with _Tail(jsonl) as tail:
            while child.poll() is None:
                self._progress(state, tail.new_records())
                time.sleep(_POLL_S)
            self._progress(state, tail.new_records())
        for line in child.stdout.read().splitlines():
            if line.startswith("summary: "):
                summary = json.loads(line.split(": ", 1)[1])
        child.stdout.close()
        return jsonl, summary

    @staticmethod
    def _progress(state: BoardState, records: list[dict[str, Any]]) -> None:
        for record in records:
            kind = record.get("type")
            if kind == "session":
                state.progress = "connected"
            elif kind == "token":
                rep = "warmup" if record.get("warmup") else f"rep {record.get('repetition', 0) + 1}"
                state.progress = f"{rep}, token {record.get('index', 0) + 1}"
                if state.spec is not None:
                    reps_before = record.get("repetition", 0) + (0 if record.get("warmup") else state.spec.warmup)
                    state.tokens_now = reps_before * state.spec.tokens + record.get("index", 0) + 1
            elif kind == "repetition" and not record.get("warmup"):
                state.last_rate = record.get("decode_tokens_per_s")
            elif kind == "error":
                state.progress = f"{record.get('kind')}: {str(record.get('message'))[:60]}"

    def _report(self, state: BoardState, result: SessionResult) -> None:
        rate = (result.summary or {}).get("decode_tokens_per_s")
        figure = f"{rate:,.2f} decode tok/s" if isinstance(rate, (int, float)) else (result.error or "")
        colour = "green" if result.status == "ok" else "red"
        self.console.print(f"[{colour}]{state.board.name}[/]: {result.spec.label}: {result.status} "
                           f"({result.wall_s:.1f} s) {figure}", highlight=False)

    # -- the live view ------------------------------------------------------

    def _view(self) -> Group:
        if self._overall_task is not None:
            done = sum(state.done for state in self.boards.values())
            self._overall.update(self._overall_task, completed=sum(s.tokens_done for s in self.boards.values()),
                                 description=f"{done}/{self.plan.total} sessions")
        table = Table(title=f"tiny-profiler bench {self.plan.path.name} -> {self.run_dir}", expand=False)
        for column in ("board", "state", "sessions", "current session", "progress", "last decode tok/s"):
            table.add_column(column, justify="right" if column in ("sessions", "last decode tok/s") else "left")
        for state in self.boards.values():
            rate = "-" if state.last_rate is None else f"{state.last_rate:,.2f}"
            failed = f" ({state.failed} failed)" if state.failed else ""
            style = {"failed": "red", "interrupted": "yellow", "done": "green"}.get(state.state, "")
            table.add_row(state.board.name + (" (emulated)" if state.board.emulated else ""),
                          f"[{style}]{state.state}[/]" if style else state.state,
                          f"{state.done}/{state.total}{failed}", state.current, state.progress, rate)
        return Group(self._overall.get_renderable(), table)


class _Tail:
    """New whole lines of a JSONL file being written."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._partial = ""

    def __enter__(self) -> _Tail:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def new_records(self) -> list[dict[str, Any]]:
        if self.path is None:
            return []
        if self._handle is None:
            try:
                self._handle = self.path.open(encoding="utf-8")
            except OSError:
                return []
        self._partial += self._handle.read()
        *lines, self._partial = self._partial.split("\n")
        records = []
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
        return records


def _term_with_parent() -> None:
    """The child gets SIGTERM (and so closes its file) if the bench dies without stopping it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _last_error(log_path: Path) -> str | None:
    with contextlib.suppress(OSError):
        lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("error: ")]
        if lines:
            return lines[-1].removeprefix("error: ")
    return None


def _records(jsonl: Path | None) -> Iterator[dict[str, Any]]:
    if jsonl is None or not jsonl.is_file():
        return
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            yield json.loads(line)


def _summary_from_file(jsonl: Path | None) -> dict[str, Any] | None:
    return next((r for r in reversed(list(_records(jsonl))) if r.get("type") == "summary"), None)


def _status_from_file(jsonl: Path | None, code: int | None) -> str:
    summary = _summary_from_file(jsonl)
    if summary is not None:
        return str(summary.get("status"))
    return "interrupted" if code == Interrupted.exit_code else "failed"


def convert_checkpoints(plan: Plan, run_dir: Path, console: Console) -> None:
    """Convert every checkpoint of the plan once per quantization, into RUN_DIR/models."""
    from profiler.models.convert import convert

    done: set[Path] = set()
    for sessions in plan.sessions.values():
        for spec in sessions:
            model = spec.model
            target = run_dir / "models" / model.converted_name()
            if not model.checkpoint or target in done:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            convert(model.path, model.tokenizer, target, quant=model.quantization, group_size=model.group_size,
                    seq_len=model.seq_len)
            console.print(f"converted {model.path.name} to {model.quantization}: {target}", highlight=False)
            done.add(target)


def prepare_firmware(plan: Plan) -> None:
    """Build each emulated board's firmware once, before the workers start (and stop early if a tool is missing)."""
    from platforms.base import adapter_for
    from platforms.boards import resolve_board
    from profiler.emulator import require_binary

    seen: set[tuple[str, str | None]] = set()
    for board in plan.boards:
        if not board.emulated or board.device is None:
            continue
        profile = resolve_board(board.device)
        for kernels in dict.fromkeys(s.kernels for s in plan.sessions.get(board.name, [])):
            if (profile.name, kernels) in seen:
                continue
            seen.add((profile.name, kernels))
            adapter = adapter_for(profile)
            firmware = adapter.firmware(profile, kernels)  # each kernel set is its own image
            spec = adapter.emulate(profile, firmware.elf, Path("/dev/null")).spec
            require_binary(spec.binary, spec.debian_package)
