"""One bench session in its own process: `python -m profiler.bench.worker SPEC_JSON`.

`bench` runs every session in a child process so that a crash stays in its
session and Ctrl-C takes the path a single `run` takes: the parent sends each
child one SIGINT, the session writes its `error` and `summary` records, the
child exits. Stdout carries two lines for the parent, `jsonl: PATH` as soon
as the session file exists and `summary: {...}` at the end; an error is one
line on stderr, and the exit code is `run`'s.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

from profiler.errors import Interrupted, ProfilerError, Stopped, interruption

_interrupted: list[int] = []
# A closed terminal sends SIGHUP to the whole process group: each worker closes its file as for Ctrl-C.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _while_planning(signum: int, frame: object) -> None:
    _interrupted.append(signum)  # acted on once the session exists, so no file is left empty


def _raise_interrupt(signum: int, frame: object) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signal.Signals(signum).name)


def run_spec(spec: dict[str, Any]) -> int:
    """Plan and run one session from the parent's spec; the exit code."""
    from profiler.api import RunOptions, plan_run
    from profiler.lab.labgrid_place import plan_on_place, rfc2217_reset_note
    from profiler.sinks.options import ObservabilityOptions, make_sinks

    run = dict(spec["run"])
    for key in ("out", "hardware_map"):
        if run.get(key) is not None:
            run[key] = Path(run[key])
    options = RunOptions(**run)
    obs = dict(spec.get("observability") or {})
    if obs.get("log_file"):
        obs["log_file"] = Path(obs["log_file"])
    observability = ObservabilityOptions(**obs)

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)

    for stop in _STOP_SIGNALS:
        signal.signal(stop, _while_planning)
    session, path = plan_on_place(options, spec.get("place"), plan_run,
                                  sinks=lambda jsonl: make_sinks(observability, jsonl, warn))
    if _interrupted:  # stopped while planning: nothing ran, so no session file
        for sink in session.sinks:
            sink.close()
        path.unlink(missing_ok=True)
        for held in session.holds:
            held.close()
        raise Interrupted("interrupted before the session started")
    for stop in _STOP_SIGNALS:
        signal.signal(stop, _raise_interrupt)
    print(f"jsonl: {path}", flush=True)
    target = session.target
    reset = target.adapter.options.reset_method or target.board.reset_method
    note = rfc2217_reset_note(target.port, target.flash, reset, target.board.name)
    if note:
        warn(note)
    summary = session.run()
    print("summary: " + json.dumps(summary.to_dict()), flush=True)
    return 0 if summary.valid else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point; the exit code."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    # The board lock records the command line: make it the bench's, not this module's.
    sys.argv = ["tiny-profiler", "bench", str(spec.get("plan", "")), f"(board {spec.get('label', '?')})"]
    try:
        return run_spec(spec)
    except KeyboardInterrupt as stop:
        print(f"error: {interruption(stop, partial=False)}", file=sys.stderr, flush=True)
        return Interrupted.exit_code
    except ProfilerError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except Exception as error:  # a bug: one line, the parent records it
        print(f"error: internal error {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return 70


if __name__ == "__main__":
    sys.exit(main())
