"""Where session records go. A sink is `emit(record)` and `close()`; it never reaches back.

Every session writes its JSONL file; the other sinks are *kinds* registered here. A kind declares its own
options (name, default, check) and builds its sink from their values, so a new sink is one module that
defines `SINK` plus its line in `KINDS`; `run` and `bench` pass the values through by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from profiler.errors import ConfigError
from profiler.records import Record


class Sink(Protocol):
    """Receives every record of a session, in order."""

    def emit(self, record: Record) -> None:
        """Take one record."""

    def close(self) -> None:
        """The session is over; flush and release."""


@dataclass(frozen=True)
class SinkOption:
    """One option of a sink kind: its keyword (run's `--name-with-dashes`), default, and a check of a value."""

    name: str
    default: Any = None
    check: Callable[[Any], None] | None = None  # raises ConfigError; not called for None


@dataclass(frozen=True)
class SinkContext:
    """What every sink may need besides its options."""

    jsonl_path: Path  # the session's file: sinks that write files put them beside it
    strict: bool  # --strict-export: a failing exporter fails the session
    warn: Callable[[str], None]  # a line for the user, also logged


@dataclass(frozen=True)
class SinkKind:
    """A registered sink: `build` returns None when its options leave it off."""

    name: str
    options: tuple[SinkOption, ...]
    build: Callable[[Mapping[str, Any], SinkContext], Sink | None]


# The modules that define a `SINK: SinkKind`, in the order their sinks receive records.
KINDS = (
    "profiler.sinks.logs",
    "profiler.sinks.tracing",
    "profiler.sinks.prometheus",
)


def sink_kinds() -> list[SinkKind]:
    """Every registered sink kind, imported on first use (the exporters' libraries are heavy)."""
    return [importlib.import_module(module).SINK for module in KINDS]


def http_url_check(option: str) -> Callable[[Any], None]:
    """The check of an exporter URL option: http(s), a host, and a port in range if given."""

    def check(url: Any) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or (
                port is not None and not 1 <= port <= 65535):
            raise ConfigError(f"{option} {url} is not an http(s) URL with a host and a port from 1 to 65535, "
                              "e.g. http://127.0.0.1:9091")

    return check
