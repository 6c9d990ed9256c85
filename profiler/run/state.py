"""The state a session's parts share."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from typing import Any

from profiler.emulator import QemuBoard
from profiler.link.protocol import Capability, Hello
from profiler.link.transport import Deadlines, SerialLink
from profiler.records import Record, RunSettings
from profiler.run.target import ModelHandle, Target


class SessionState:
    """What every part of a session reads: `Session` (a dataclass) holds these fields and defines `_emit`
    and `_phase`."""

    target: Target
    model: ModelHandle
    settings: RunSettings
    deadlines: Deadlines
    notify: Callable[[str], None]
    _phase_name: str | None
    _emulator: QemuBoard | None
    _link: SerialLink | None
    _hello: Hello | None
    _nonce: int
    _runs_finished: int
    _quality: Any
    _trace_dir: tempfile.TemporaryDirectory[str] | None

    @property
    def emulated(self) -> bool:
        """Launched on an emulator by us, or a board that says it runs on one (reached through a port)."""
        return self.target.emulate or bool(self._hello and self._hello.capabilities & Capability.EMULATOR)

    def _fixed_point(self) -> bool:
        """Whether the board runs the fixed-point forward pass (HELLO capability bit 5)."""
        return self._hello is not None and bool(self._hello.capabilities & Capability.FIXED_POINT)

    def _emit(self, record: Record) -> None:
        raise NotImplementedError

    def _phase(self, name: str, **fields: Any) -> contextlib.AbstractContextManager[dict[str, Any]]:
        raise NotImplementedError
