"""What the emulated CPU executed, from our QEMU plugin (tbtrace.c), cut into segments.

The plugin is built on first use with the host's C compiler (Debian `gcc`) into the profiler's cache,
keyed by the hash of its source. It writes two files: FILE (the execution stream: block ids in order,
run-length encoded, and the 16-byte flash lines data loads touched) and FILE.blocks (each translated
block's instruction addresses). A segment starts at every entry of a mark address (tp_forward for
the profiler's firmware, the measured function for an anchor), so segment k + 1 is the k-th call.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from profiler.emulator import require_binary
from profiler.errors import PlatformError

PLUGIN_SOURCE = Path(__file__).with_name("tbtrace.c")
TAG_EXEC, TAG_REPEAT, TAG_LINE = 0, 1, 2
LINE_BYTES = 16


def plugin_path() -> Path:
    """The built plugin, compiled now if the cache has none for this source."""
    from profiler.firmware import cache_dir

    source = PLUGIN_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    target = cache_dir().parent / "plugins" / digest / "libtbtrace.so"
    if target.exists():
        return target
    gcc = require_binary("gcc", "gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per builder: bench sessions running at once may all build it; the last rename wins.
    tmp = target.with_name(f".libtbtrace.{os.getpid()}.{threading.get_ident()}.tmp")
    result = subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(PLUGIN_SOURCE)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise PlatformError(f"building the trace plugin failed: {result.stderr.strip()[-400:]}")
    tmp.replace(target)
    return target


def plugin_args(out: Path, flash: tuple[int, int] | None = None, mark: int | None = None,
                limit: int | None = None) -> list[str]:
    """QEMU arguments that load the plugin writing to `out` (and `out`.blocks)."""
    spec = f"{plugin_path()},out={out}"
    if flash is not None:
        spec += f",flash=0x{flash[0]:x}:0x{flash[1]:x}"
    if mark is not None and limit is not None:
        spec += f",mark=0x{mark:x},limit={limit}"
    return ["-plugin", spec]


@dataclass
class Trace:
    """One traced run: blocks, the execution stream and where each segment starts."""

    blocks: dict[int, tuple[int, ...]]  # block id -> instruction addresses
    tags: np.ndarray  # per stream word: TAG_EXEC, TAG_REPEAT or TAG_LINE
    values: np.ndarray  # block id, repeat count or flash line
    marks: tuple[int, ...] = ()
    segment_starts: list[int] = field(default_factory=list)  # stream index of each mark entry

    @classmethod
    def read(cls, path: Path, marks: tuple[int, ...] = ()) -> Trace:
        blocks_path = Path(str(path) + ".blocks")
        if not path.exists() or not blocks_path.exists():
            raise PlatformError(f"the trace plugin wrote no output at {path}; see QEMU's messages")
        words = np.fromfile(path, dtype="<u4")
        defs = np.fromfile(blocks_path, dtype="<u4").tolist()
        blocks: dict[int, tuple[int, ...]] = {}
        i = 0
        while i < len(defs):
            n, ident = defs[i], defs[i + 1]
            blocks[ident] = tuple(defs[i + 2:i + 2 + n])
            i += 2 + n
        trace = cls(blocks, (words >> 30).astype(np.uint8), (words & 0x3FFFFFFF).astype(np.int64), marks=marks)
        if marks:
            starts = np.array([blocks[b][0] if blocks.get(b) else -1 for b in range(max(blocks, default=0) + 1)],
                              dtype=np.int64)
            execs = np.flatnonzero(trace.tags == TAG_EXEC)
            is_mark = np.isin(starts[trace.values[execs]], np.array(marks, dtype=np.int64))
            trace.segment_starts = execs[is_mark].tolist()
        return trace

    def executions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stream index, block id, times in a row) of every block execution record."""
        idx = np.flatnonzero(self.tags == TAG_EXEC)
        counts = np.ones(len(idx), dtype=np.int64)
        nxt = idx + 1
        has_next = nxt < len(self.tags)
        repeat = np.zeros(len(idx), dtype=bool)
        repeat[has_next] = self.tags[nxt[has_next]] == TAG_REPEAT
        counts[repeat] += self.values[nxt[repeat]]
        return idx, self.values[idx], counts

    def segment_of(self, positions: np.ndarray) -> np.ndarray:
        """Segment index of stream positions: 0 before the first mark, k after the k-th."""
        return np.searchsorted(np.array(self.segment_starts, dtype=np.int64), positions, side="right")
