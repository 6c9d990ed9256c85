"""Structured logs: JSON lines in a file, each carrying the session's identity.

The console stays human (rich); this file is for machines (Loki, jq). The
`LogSink` turns session records into log events and sets the context fields
(session id, device id, platform, model name) every later line carries.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from profiler.errors import ConfigError
from profiler.outputs import check_file, results_error
from profiler.records import (
    ErrorRecord,
    PhaseRecord,
    Record,
    RepetitionRecord,
    SessionHeader,
    SummaryRecord,
    TokenRecord,
)

LOGGER_NAME = "tiny_profiler"
DEFAULT_LOG_FILE = Path("logs") / "profiler.jsonl"
_CONTEXT: dict[str, Any] = {}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class _QuietFileHandler(logging.FileHandler):
    """A log file that stops logging when its disk fills, instead of printing a traceback per line.

    The log is a side channel: the session's JSONL (which reports a full disk with its own exit code)
    is the record that must survive.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, session context and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_CONTEXT,
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logger() -> logging.Logger:
    """The profiler's logger."""
    return logging.getLogger(LOGGER_NAME)


def setup_logging(path: Path = DEFAULT_LOG_FILE, level: str = "info") -> Path:
    """Send the profiler's logs to `path` as JSON lines (appending); returns the path."""
    if level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"unknown log level {level!r}; use debug, info, warning or error")
    check_file(path, "--log-file")
    log = logger()
    for old in list(log.handlers):
        log.removeHandler(old)
        old.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _QuietFileHandler(path)
    except OSError as exc:
        raise results_error(path, exc, "--log-file") from None
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False
    return path


class LogSink:
    """Logs what happens in a session; tokens at debug level, the rest at info."""

    def emit(self, record: Record) -> None:
        log = logger()
        if isinstance(record, SessionHeader):
            _CONTEXT.update(session_id=record.session_id, device_id=record.device, platform=record.platform,
                            model_name=record.model)
            log.info("session started", extra={"board": record.board, "firmware_id": record.firmware_id,
                                               "emulated": record.emulated, "serial_url": record.serial_url})
        elif isinstance(record, PhaseRecord):
            log.info("phase %s done", record.name, extra={"phase": record.name, "host_ms": record.host_ms,
                                                          "device_ms": record.device_ms,
                                                          "repetition": record.repetition})
        elif isinstance(record, TokenRecord):
            log.debug("token", extra={"repetition": record.repetition, "index": record.index,
                                      "token_id": record.token_id, "ticks": record.ticks})
        elif isinstance(record, RepetitionRecord):
            level = logging.INFO if record.valid else logging.WARNING
            log.log(level, "repetition %d done", record.repetition, extra={
                "repetition": record.repetition, "warmup": record.warmup, "valid": record.valid,
                "decode_tokens_per_s": record.decode_tokens_per_s, "reasons": record.reasons})
        elif isinstance(record, ErrorRecord):
            log.error("session stopped: %s", record.message, extra={"kind": record.kind, "phase": record.phase})
        elif isinstance(record, SummaryRecord):
            log.info("session finished", extra={"status": record.status, "valid": record.valid,
                                                "decode_tokens_per_s": record.decode_tokens_per_s})

    def close(self) -> None:
        for handler in logger().handlers:
            handler.flush()
        _CONTEXT.clear()
