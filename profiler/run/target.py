"""What a session runs: the model as the session needs it, and the board with how to reach it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platforms.base import PlatformAdapter
from platforms.boards import BoardProfile
from profiler.firmware import FirmwareImage
from profiler.power.telemetry import PowerSource


@dataclass(frozen=True)
class ModelHandle:
    """A model file as the session needs it: identity, tokenizer, reference tokens."""

    path: Path
    name: str
    sha256: str
    crc32: int
    size_bytes: int
    quantization: str
    token_bytes: Callable[[int, int], bytes]
    # (prompt, tokens, temperature, seed, fixed_point) -> the tokens the board must produce
    reference_tokens: Callable[[Sequence[int], int, float, int, bool], list[int]]
    # run --check-quality: (tokens, the board's logits per position, fixed_point) -> a QualityCheck
    quality_check: Callable[[list[int], list[list[float]], bool], Any] | None = None
    vocab_size: int = 0  # 0: unknown, token ids are not checked


@dataclass
class Target:
    """The board to profile and how to reach it."""

    board: BoardProfile
    adapter: PlatformAdapter
    firmware: FirmwareImage | None
    emulate: bool
    port: str | None = None
    flash: bool = True
    power: PowerSource | None = None
