"""The host reference pass, computed once: cached on disk and started before the board is up.

A session checks the board's tokens against the host's forward pass of the
same model with the same arithmetic. That pass is deterministic in its inputs,
so its result is stored under a key of everything it depends on: the model's
sha256, the prompt tokens, the number of tokens, temperature, seed, the
arithmetic (f32 or fixed point) and a hash of the reference code itself (a
changed forward pass never reuses an old answer). A cache miss is computed in
a background thread started while QEMU boots and the link connects; the
session then waits only for what is left of it. Entries are small JSON files
beside the firmware cache (`$TINY_PROFILER_CACHE/reference`, else
`~/.cache/tiny-profiler/reference`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from profiler.firmware import FIRMWARE_DIR, cache_dir

_MODELS_DIR = Path(__file__).resolve().parent / "models"
Compute = Callable[[Sequence[int], int, float, int, bool], list[int]]


def reference_cache_dir() -> Path:
    """Where reference results live: beside the firmware cache."""
    return cache_dir().parent / "reference"


@functools.cache
def reference_code_hash() -> str:
    """sha256 over the forward pass's sources (profiler/models/*.py): a new reference invalidates old entries."""
    digest = hashlib.sha256()
    for path in sorted(_MODELS_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def port_fixed_point(port: str, firmware_dir: Path = FIRMWARE_DIR) -> bool:
    """Whether a firmware port builds the fixed-point forward pass by default (its port.mk says
    `FIXED_POINT ?= 1`): the arithmetic to start the reference in before the board's HELLO confirms it."""
    with contextlib.suppress(OSError):
        text = (firmware_dir / "ports" / port / "port.mk").read_text()
        return re.search(r"^FIXED_POINT\s*\?=\s*1\b", text, re.MULTILINE) is not None
    return False


class ReferencePasses:
    """Reference token sequences of one model: from the cache, a prefetch in flight, or computed now."""

    def __init__(self, model_sha256: str, compute: Compute, root: Path | None = None) -> None:
        self.model_sha256 = model_sha256
        self.compute = compute
        self.root = root or reference_cache_dir()
        self._pending: dict[str, Future[list[int]]] = {}
        self._lock = threading.Lock()
        self._computing = threading.Lock()  # one pass at a time: a Reference keeps its KV cache in itself

    def key(self, prompt: Sequence[int], tokens: int, temperature: float, seed: int, fixed_point: bool) -> str:
        """The cache key of one pass: every input it depends on, and the code that computes it."""
        identity = [self.model_sha256, list(prompt), tokens, float(temperature), seed,
                    "fixed-point" if fixed_point else "f32", reference_code_hash()]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()

    def _load(self, key: str) -> list[int] | None:
        try:
            entry = json.loads((self.root / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None  # absent, or a torn/foreign file: compute again
        tokens = entry.get("tokens") if isinstance(entry, dict) else None
        return tokens if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens) else None

    def _store(self, key: str, tokens: list[int]) -> None:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next run the pass
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                json.dump({"tokens": tokens}, out)
            os.replace(tmp, self.root / f"{key}.json")  # atomic: a parallel session sees all or nothing

    def _run(self, key: str, args: tuple[Sequence[int], int, float, int, bool]) -> list[int]:
        with self._computing:
            tokens = self.compute(*args)
        self._store(key, tokens)
        return tokens

    def prefetch(self, prompt: Sequence[int], tokens: int, temperature: float, seed: int, fixed_point: bool) -> None:
        """Start the pass in the background unless it is cached (a daemon thread: never holds up an exit)."""
        key = self.key(prompt, tokens, temperature, seed, fixed_point)
        with self._lock:
            if key in self._pending or self._load(key) is not None:
                return
            future: Future[list[int]] = Future()
            self._pending[key] = future

        def work() -> None:
            try:
                future.set_result(self._run(key, (tuple(prompt), tokens, temperature, seed, fixed_point)))
            except BaseException as exc:  # handed to whoever asks for the tokens
                future.set_exception(exc)

        threading.Thread(target=work, name="reference-prefetch", daemon=True).start()

    def tokens(self, prompt: Sequence[int], tokens: int, temperature: float, seed: int, fixed_point: bool) -> list[int]:
        """The reference tokens: cached, awaited from the prefetch, or computed here."""
        key = self.key(prompt, tokens, temperature, seed, fixed_point)
        with self._lock:
            pending = self._pending.get(key)
        if pending is not None:
            return pending.result()
        cached = self._load(key)
        if cached is not None:
            return cached
        return self._run(key, (tuple(prompt), tokens, temperature, seed, fixed_point))

    __call__ = tokens  # a ModelHandle's reference_tokens
