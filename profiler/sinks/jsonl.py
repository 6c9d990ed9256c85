"""One JSONL file per session, one record per line, each line written whole and flushed.

A disk that fills up mid-session must not leave half a line, nor a file that
stops without saying why. So every record goes out in one `write` of the
whole line; when a write fails, the file is cut back to its last whole
record, a small reserve file set aside at the start is given back to the file
system, and the closing records (error, summary) are tried once more. The
session then ends with ResultsError (its own exit code) naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from pathlib import Path
from typing import Any

from profiler.errors import ResultsError
from profiler.outputs import results_error
from profiler.records import ErrorRecord, Record, SummaryRecord

# Set aside at the start and freed when the disk fills: room for the error and summary lines.
RESERVE_BYTES = 256 * 1024


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity; a missing figure is null, never a fake number.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def encode_record(record: Record) -> bytes:
    """One record as one JSON line."""
    return (json.dumps(_finite(record.to_dict()), ensure_ascii=False) + "\n").encode("utf-8")


class JsonlSink:
    """Writes records to `path` as they come; a crash or a full disk leaves only whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reserve = path.with_name(f".{path.name}.reserve")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise results_error(path, exc) from None
        self._size = 0  # bytes of whole records on disk
        self.failure: ResultsError | None = None
        try:
            reserve = os.open(self._reserve, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(reserve, 0, RESERVE_BYTES)
            finally:
                os.close(reserve)
        except OSError as exc:
            self._drop_reserve()
            os.close(self._fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise results_error(path, exc) from None

    def emit(self, record: Record) -> None:
        if self._fd is None:
            return
        closing = isinstance(record, (ErrorRecord, SummaryRecord))
        if self.failure is not None and not closing:
            return  # the session is stopping because of this file: only its closing records still matter
        line = encode_record(record)
        try:
            self._write_whole(line)
        except OSError as exc:
            self._cut_back()
            if self.failure is None:
                self.failure = results_error(self.path, exc)
                self._drop_reserve()  # room for the error and summary the session writes next
                if not closing:
                    raise self.failure from None
                self._retry(line)

    def _write_whole(self, line: bytes) -> None:
        assert self._fd is not None
        written = os.write(self._fd, line)
        if written != len(line):  # a regular file writes short only when it runs out of room
            raise OSError(errno.ENOSPC, "No space left on device")
        self._size += written

    def _retry(self, line: bytes) -> None:
        with contextlib.suppress(OSError):
            self._write_whole(line)
            return
        self._cut_back()

    def _cut_back(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)

    def _drop_reserve(self) -> None:
        with contextlib.suppress(OSError):
            self._reserve.unlink()

    def close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)
        self._drop_reserve()
        if self._size == 0 and self.failure is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # not one whole line fitted: no empty file pretending to be a session
        if self.failure is not None:
            raise self.failure


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a session file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
