"""One JSONL file per session, one record per line, flushed per record."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TextIO

from profiler.records import Record


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity; a missing figure is null, never a fake number.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class JsonlSink:
    """Writes records to `path` as they come; a crash leaves every written line intact."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: TextIO | None = path.open("x", encoding="utf-8")

    def emit(self, record: Record) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(_finite(record.to_dict()), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a session file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
