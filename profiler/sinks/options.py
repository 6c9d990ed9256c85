"""Where a session's records go besides its JSONL: traces, metrics, logs.

One place builds the sinks from the command-line options, so `run` and
later commands (bench) share them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from profiler.errors import ConfigError
from profiler.logs import DEFAULT_LOG_FILE, LogSink, logger, setup_logging
from profiler.sinks import Sink
from profiler.sinks.prometheus import PrometheusSink
from profiler.sinks.tracing import TraceSink, otlp_traces_endpoint


@dataclass(frozen=True)
class ObservabilityOptions:
    """Exporter settings; None/False leaves that exporter off."""

    pushgateway: str | None = None
    metrics_port: int | None = None
    otlp_endpoint: str | None = None
    strict_export: bool = False
    log_file: Path | None = DEFAULT_LOG_FILE
    log_level: str = "info"
    push_interval_s: float = 15.0

    def __post_init__(self) -> None:
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port {self.metrics_port} is not a TCP port; use 1..65535 "
                              "(or 0 for any free port)")
        for option, url in (("--pushgateway", self.pushgateway), ("--otlp-endpoint", self.otlp_endpoint)):
            if url is not None:
                check_http_url(url, option)

    @classmethod
    def from_cli(cls, pushgateway: str | None, **kwargs: object) -> ObservabilityOptions:
        """Options with the environment's defaults filled in (TINY_PROFILER_PUSHGATEWAY)."""
        return cls(pushgateway=pushgateway or os.environ.get("TINY_PROFILER_PUSHGATEWAY") or None,
                   **kwargs)  # type: ignore[arg-type]


def check_http_url(url: str, option: str) -> None:
    """An exporter URL: http(s), a host, and a port in range if given."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or (port is not None and not 1 <= port <= 65535):
        raise ConfigError(f"{option} {url} is not an http(s) URL with a host and a port from 1 to 65535, "
                          "e.g. http://127.0.0.1:9091")


def trace_path(jsonl_path: Path) -> Path:
    """The trace file that sits next to a session's JSONL."""
    return jsonl_path.with_name(jsonl_path.stem + ".trace.jsonl")


def make_sinks(options: ObservabilityOptions, jsonl_path: Path, warn: Callable[[str], None]) -> list[Sink]:
    """Sinks for traces (always, to a file), metrics and structured logs."""

    def warn_and_log(message: str) -> None:
        logger().warning(message)
        warn(message)

    sinks: list[Sink] = []
    if options.log_file is not None:
        setup_logging(options.log_file, options.log_level)
        sinks.append(LogSink())
    sinks.append(TraceSink(trace_path(jsonl_path), otlp_traces_endpoint(options.otlp_endpoint),
                           options.strict_export, warn_and_log))
    if options.pushgateway or options.metrics_port is not None:
        sinks.append(PrometheusSink(options.pushgateway, options.metrics_port, options.strict_export,
                                    warn_and_log, interval_s=options.push_interval_s))
    return sinks
