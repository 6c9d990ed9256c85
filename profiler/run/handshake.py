"""The handshake with the board.

Its HELLO (asked for until a deadline), the checks of what it says, its events, and what a reset means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from profiler.errors import FirmwareError, LinkDisconnected, LinkTimeout, ProtocolError
from profiler.link.protocol import (
    MODEL_STATUS_TEXT,
    PROTOCOL_VERSION,
    Boot,
    DeviceError,
    Hello,
    Log,
    ModelStatus,
    MsgType,
    check_hello,
)
from profiler.link.transport import ASK_MAX_S, Backoff, SerialLink, Wait, open_serial
from profiler.records import BoardResetRecord
from profiler.run.state import SessionState

# Asking again (docs/protocol.md, "Asking again"): how long the line may be quiet before STATUS_REQ where the
# board owes a frame it sends at once (a RUN's first frame; MEM and DONE after the last token).
STATUS_AFTER_S = 0.25


class Handshake(SessionState):
    """Asking the board who it is, checking its answers, and reading its events."""

    def _probe_hello(self, port: str) -> Hello | None:
        """Ask the board for its HELLO, again and again until the probe deadline; None when nothing answers.

        Says so before anything is flashed: boot text, a lost request or a lost answer are asked through,
        so only a board that never answers (another firmware, a bootloader) gets here.
        """
        seconds = min(self.deadlines.probe_s, self.deadlines.hello_s)
        try:
            self._link = SerialLink(open_serial(port, self.target.board.baud, connect_timeout_s=5.0), port)
            self._hello = self._wait_hello(seconds, ask_at_once=True)
        except LinkTimeout as exc:
            self.notify(f"no profiler firmware answers on {port} ({exc}); flashing it")
            return None
        except ProtocolError as exc:
            self.notify(f"the board on {port} speaks another protocol ({exc}); flashing it")
            return None
        return self._hello

    def _wait_hello(self, seconds: float | None = None, ask_at_once: bool = True) -> Hello:
        """The board's HELLO, asking with HELLO_REQ (after a delimiter) with backoff until the deadline."""
        link = self._link
        assert link is not None
        wait = Wait("the board's HELLO", self.deadlines.hello_s if seconds is None else seconds)
        asks = Backoff(0.0 if ask_at_once else 1.0, ASK_MAX_S)  # ours says HELLO as it boots: ask later

        def ask() -> None:
            if asks.due():
                link.send(MsgType.HELLO_REQ)
                wait.requests += 1

        for event in self._events(wait, ask):
            if isinstance(event, Boot):
                return event.hello
            if isinstance(event, Hello):
                return event
        raise AssertionError("unreachable")

    def _check_model(self, hello: Hello) -> None:
        if hello.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"board speaks protocol {hello.protocol_version}, this profiler {PROTOCOL_VERSION}; "
                "re-flash the firmware that ships with this profiler"
            )
        check_hello(hello)
        if hello.model_status != ModelStatus.OK:
            status = MODEL_STATUS_TEXT.get(ModelStatus(hello.model_status), f"status {hello.model_status}")
            raise FirmwareError(f"board reports {status}; re-flash the model", code=hello.model_status)
        if hello.model_crc32 != self.model.crc32:
            raise FirmwareError(
                f"the model on the board (crc32 {hello.model_crc32:08x}) is not {self.model.name} "
                f"(crc32 {self.model.crc32:08x}); flash the model you asked for"
            )

    def _events(self, wait: Wait, ask: Callable[[], None] | None = None) -> Iterator[Any]:
        """The board's events until `wait`'s deadline; `ask` is called whenever a read brought nothing."""
        assert self._link is not None
        try:
            for event in self._link.events(wait, idle=True):
                if event is None:
                    if ask is not None:
                        ask()
                    continue
                if isinstance(event, DeviceError):
                    raise FirmwareError(f"board error {event.code}: {event.message}", code=event.code)
                if isinstance(event, Log):
                    continue
                yield event
        except LinkDisconnected as exc:
            reason = self._emulator.exit_reason() if self._emulator is not None else None
            if reason is not None:
                raise LinkDisconnected(f"{exc}; {reason}") from exc
            raise

    def _board_reset(self, rep: int, hello: Hello | None) -> None:
        """A reset noticed before any frame of repetition `rep`: recorded; the repetition is not cut short."""
        self._emit(BoardResetRecord(
            message=f"the board restarted before repetition {rep} began; the repetition runs on the restarted board",
            repetition=rep, phase=self._phase_name, firmware_id=hello.firmware_id if hello else "",
        ))
        if hello is not None:
            self._rehandshake(hello)

    def _rehandshake(self, hello: Hello) -> None:
        """After a reset: the board's boot HELLO must still be this session's firmware, board and model."""
        assert self._hello is not None
        self._check_model(hello)
        before = self._hello
        if (hello.firmware_id, hello.board, hello.timer_hz) != (before.firmware_id, before.board, before.timer_hz):
            raise FirmwareError(
                f"after its reset the board says it is {hello.board} with firmware {hello.firmware_id} at "
                f"{hello.timer_hz} Hz, not {before.board} / {before.firmware_id} / {before.timer_hz} Hz; "
                "check what is plugged in and re-run"
            )
        self._hello = hello
        self._runs_finished = 0
