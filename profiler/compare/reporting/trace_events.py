"""A session as Chrome/Perfetto trace-event JSON (`report --trace-events FILE.json`).

The JSON object format of the Trace Event Format: `{"traceEvents": [...],
"displayTimeUnit": "ms", "otherData": {...}}`; ui.perfetto.dev and
chrome://tracing open it. Per session, two processes:

- `device`: thread `phases` (prefill and decode of every repetition, warmup
  included, as complete `X` slices), thread `tokens` (each token a slice from
  the previous token, or the prefill start, to its own tick; args: index,
  position, token id, energy), and counter tracks (`C`) for power (mW),
  temperature (°C), memory (KB) and CPU utilization (%);
- `host`: thread `host phases` (flash, connection, reference, warmup,
  teardown, ... as the host timed them) and thread `device phases seen by the
  host` (prefill/decode as their frames arrived).

Times are microseconds. Host slices come from host clock readings; device
slices and counters from device ticks only, placed so that the first prefill
starts when the host saw it start. Names are `process_name`/`thread_name`
metadata (`M`) events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from profiler.compare.load import Column, SessionFile

COUNTERS: dict[str, tuple[str, str, float, str]] = {  # sample kind -> (track, value key, scale, series name)
    "power": ("power (mW)", "power_mw", 1.0, "mW"),
    "temperature": ("temperature (°C)", "temp_c", 1.0, "°C"),
    "memory": ("memory (KB)", "peak_ram_bytes", 1 / 1024, "peak RAM KB"),
    "cpu": ("CPU utilization (%)", "decode_utilization_percent", 1.0, "decode %"),
}
PHASES_TID, TOKENS_TID, HOST_TID, HOST_DEVICE_TID = 1, 2, 1, 2


def _meta(pid: int, tid: int | None, kind: str, name: str) -> dict[str, Any]:
    event: dict[str, Any] = {"name": kind, "ph": "M", "pid": pid, "args": {"name": name}}
    if tid is not None:
        event["tid"] = tid
    return event


def _slice(name: str, cat: str, start_us: float, end_us: float, pid: int, tid: int,
           args: dict[str, Any]) -> dict[str, Any]:
    # Both ends rounded, so a slice that starts where another ends starts exactly there.
    ts, end = round(start_us, 3), round(end_us, 3)
    return {"name": name, "cat": cat, "ph": "X", "ts": ts, "dur": round(max(end - ts, 0.0), 3),
            "pid": pid, "tid": tid, "args": args}


class _Clock:
    """Host and device time of one session on the trace's microsecond axis."""

    def __init__(self, session: SessionFile, host_origin_ns: int) -> None:
        self.timer_hz = float(session.header.get("timer_hz") or 1)
        self.host_origin_ns = host_origin_ns
        device = [p for p in session.of_type("phase") if isinstance(p.get("start_ticks"), int)]
        first = min(device, key=lambda p: p["start_ticks"], default=None)
        self.anchor_ticks = int(first["start_ticks"]) if first else 0
        self.anchor_us = self.host_us(int(first["start_unix_ns"])) if first else 0.0

    def host_us(self, unix_ns: int) -> float:
        return (unix_ns - self.host_origin_ns) / 1e3

    def device_us(self, ticks: int) -> float:
        return self.anchor_us + (ticks - self.anchor_ticks) * 1e6 / self.timer_hz


def _session_events(session: SessionFile, label: str, pid: int, host_origin_ns: int) -> list[dict[str, Any]]:
    clock = _Clock(session, host_origin_ns)
    device, host = pid, pid + 1
    events = [_meta(device, None, "process_name", f"device: {label} ({session.header.get('board')})"),
              _meta(device, PHASES_TID, "thread_name", "phases"), _meta(device, TOKENS_TID, "thread_name", "tokens"),
              _meta(host, None, "process_name", f"host: {label} ({session.header.get('host')})"),
              _meta(host, HOST_TID, "thread_name", "host phases"),
              _meta(host, HOST_DEVICE_TID, "thread_name", "device phases seen by the host")]
    prefill_start: dict[tuple[int, bool], int] = {}
    for phase in session.of_type("phase"):
        name, rep, warm = str(phase.get("name")), phase.get("repetition"), bool(phase.get("warmup"))
        cat = "warmup" if warm else "measured"
        host_us = clock.host_us(int(phase.get("start_unix_ns") or host_origin_ns))
        args = {"repetition": rep, "warmup": warm, "host_ms": phase.get("host_ms")}
        if isinstance(phase.get("start_ticks"), int) and isinstance(phase.get("end_ticks"), int):
            start, end = int(phase["start_ticks"]), int(phase["end_ticks"])
            if name == "prefill":
                prefill_start[(int(rep or 0), warm)] = start
            events.append(_slice(f"{name} {rep}", cat, clock.device_us(start), clock.device_us(end), device, PHASES_TID,
                                 {**args, "device_ms": phase.get("device_ms"), "timing": "device"}))
            events.append(_slice(f"{name} {rep}", cat, host_us, host_us + float(phase.get("host_ms") or 0) * 1e3,
                                 host, HOST_DEVICE_TID, {**args, "timing": "host"}))
        else:
            end_us = host_us + float(phase.get("host_ms") or 0) * 1e3
            events.append(_slice(name, "host", host_us, end_us, host, HOST_TID,
                                 {**args, "detail": phase.get("detail"), "timing": "host"}))
    previous: dict[tuple[int, bool], int] = {}
    for token in session.of_type("token"):
        key = (int(token["repetition"]), bool(token.get("warmup")))
        start = previous.get(key, prefill_start.get(key, int(token["ticks"])))
        previous[key] = int(token["ticks"])
        events.append(_slice(repr(token.get("text", ""))[1:-1] or f"token {token['index']}",
                             "warmup" if key[1] else "measured", clock.device_us(start),
                             clock.device_us(int(token["ticks"])), device, TOKENS_TID,
                             {k: token.get(k) for k in ("repetition", "index", "position", "token_id", "energy_mj")}))
    for sample in session.of_type("sample"):
        counter = COUNTERS.get(str(sample.get("kind")))
        value = (sample.get("values") or {}).get(counter[1]) if counter else None
        if counter is not None and isinstance(value, (int, float)) and isinstance(sample.get("ticks"), int):
            events.append({"name": counter[0], "ph": "C", "ts": round(clock.device_us(sample["ticks"]), 3),
                           "pid": device, "args": {counter[3]: float(value) * counter[2]}})
    return events


def trace_events(columns: Sequence[Column]) -> dict[str, Any]:
    """The trace document of every column's first session."""
    sessions = [(c.label, c.sessions[0]) for c in columns]
    starts = [int(p["start_unix_ns"]) for _, s in sessions for p in s.of_type("phase")
              if isinstance(p.get("start_unix_ns"), int)]
    origin = min(starts) if starts else 0
    events: list[dict[str, Any]] = []
    for k, (label, session) in enumerate(sessions):
        events += _session_events(session, label, 1 + 2 * k, origin)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"writer": "tiny-profiler", "sessions": [s.header.get("session_id") for _, s in sessions],
                          "device_time": "device slices are device-timed, placed at the host time of the first "
                                         "prefill"}}


def write_trace_events(columns: Sequence[Column], path: Path) -> Path:
    """Write the trace-event JSON; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trace_events(columns), ensure_ascii=False), encoding="utf-8")
    return path
