"""Where session records go. A sink is `emit(record)` and `close()`; it never reaches back."""

from __future__ import annotations

from typing import Protocol

from profiler.records import Record


class Sink(Protocol):
    """Receives every record of a session, in order."""

    def emit(self, record: Record) -> None:
        """Take one record."""

    def close(self) -> None:
        """The session is over; flush and release."""
