"""The structured JSON log file as a sink kind (`--log-file`, `--log-level`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from profiler.logs import DEFAULT_LOG_FILE, LogSink, setup_logging
from profiler.sinks import Sink, SinkContext, SinkKind, SinkOption


def _build(values: Mapping[str, Any], context: SinkContext) -> Sink | None:
    if values["log_file"] is None:
        return None
    setup_logging(Path(values["log_file"]), values["log_level"])
    return LogSink()


SINK = SinkKind("log", (SinkOption("log_file", DEFAULT_LOG_FILE), SinkOption("log_level", "info")), _build)
