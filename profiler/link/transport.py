"""Serial link to a board through pyserial's `serial_for_url`.

Device paths (`/dev/ttyACM0`), `socket://host:port` (QEMU, pytest-embedded
style loopback) and `rfc2217://host:port` (ser2net, labgrid) all go through the
same code, so an emulated board exercises exactly the path hardware does.
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, overload

import serial
from serial.urlhandler import protocol_socket

from profiler.errors import LinkDisconnected, LinkError, LinkTimeout, ProtocolError
from profiler.link.protocol import Event, FrameDecoder, MsgType, encode_frame, parse_event

_READ_CHUNK = 4096
_POLL_S = 0.05
# The longest interval between two requests to a board that does not answer (docs/protocol.md, "Asking again").
ASK_MAX_S = 1.0


def open_serial(url: str, baudrate: int, connect_timeout_s: float = 0.0) -> serial.SerialBase:
    """Open `url`, retrying refused connections for up to `connect_timeout_s`.

    Retrying matters for emulators that have not started listening yet.
    Local device paths are opened exclusively so a second profiler cannot share
    a board.
    """
    deadline = time.monotonic() + connect_timeout_s
    is_url = "://" in url
    if url.startswith("rfc2217://") and "ign_set_control" not in url:
        # The profiler never drives DTR/RTS over RFC2217 (esptool resets ESP32s on its own connection), and
        # ser2net serving a pty (an emulated board, labgrid's RawSerialPort) never answers a modem-line
        # change, which would cost pyserial's 3 s wait on every open: leave the lines as ser2net set them.
        url += ("&" if "?" in url else "?") + "ign_set_control"
    while True:
        try:
            port = serial.serial_for_url(url, do_not_open=True, baudrate=baudrate, timeout=_POLL_S)
            if not is_url:
                port.exclusive = True
            port.open()
            return port
        except (serial.SerialException, OSError) as exc:
            if time.monotonic() >= deadline:
                raise LinkError(
                    f"cannot open {url}: {exc}; check the port name, cable and permissions "
                    "(dialout group)"
                ) from exc
            time.sleep(0.05)


@dataclass(frozen=True)
class Deadlines:
    """How long the host waits on the board (run --hello-timeout / --frame-timeout; docs/protocol.md, "Deadlines").

    Each is counted from the last frame that was progress (the HELLO asked for, the next frame of the
    repetition in flight), so noise, LOG floods and frames of another repetition never move it.
    """

    hello_s: float = 20.0  # the handshake, after connecting and after a board reset
    frame_s: float = 60.0  # the next frame a repetition owes: its first, each token, MEM and DONE
    probe_s: float = 5.0  # before flashing: does profiler firmware answer at all?


@dataclass
class Wait:
    """One wait on the board: what for, and an absolute deadline that only `progress()` moves.

    The link counts what arrived since the last progress, so a timeout can say whether the line was
    silent or full of noise, corrupt frames or frames that were not the one waited for.
    """

    what: str
    seconds: float
    requests: int = 0  # requests sent during the wait (HELLO_REQ, STATUS_REQ, RUN again)
    deadline: float = field(init=False)
    started: float = field(init=False)
    bytes_in: int = 0
    noise_bytes: int = 0
    corrupt_frames: int = 0
    other_frames: int = 0

    def __post_init__(self) -> None:
        self.progress()

    def progress(self, what: str | None = None) -> None:
        """The awaited frame arrived: a new deadline for the next one (`what`, if it has a new name)."""
        self.started = time.monotonic()
        self.deadline = self.started + self.seconds
        self.bytes_in = self.noise_bytes = self.corrupt_frames = self.other_frames = 0
        if what is not None:
            self.what = what

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() > self.deadline

    def timeout(self, url: str) -> LinkTimeout:
        """The error for a deadline that passed: silence, or what arrived instead."""
        waited = time.monotonic() - self.started
        asked = f" (asked {self.requests} times)" if self.requests else ""
        if self.bytes_in == 0:
            return LinkTimeout(
                f"silence: no bytes from {url} for {waited:.1f} s while waiting for {self.what}{asked}; "
                "check the cable and the baud rate, and that the profiler firmware is on the board"
            )
        return LinkTimeout(
            f"{self.what} did not come from {url} within {waited:.1f} s{asked}: {self.noise_bytes} bytes of noise, "
            f"{self.corrupt_frames} corrupt and {self.other_frames} other frames arrived instead; "
            "check the baud rate and the cable, and that nothing else writes to the line"
        )


@dataclass
class Backoff:
    """When to ask the board again: `first_s` after a (re)start, then after `step_s`, twice that, ... up to `max_s`."""

    first_s: float
    max_s: float
    step_s: float = 0.25
    _next: float = field(init=False)
    _interval: float = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Start over (the board answered)."""
        self._interval = self.step_s
        self._next = time.monotonic() + self.first_s

    def due(self) -> bool:
        """True when it is time to ask; then the next ask is scheduled."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval
        self._interval = min(self._interval * 2, self.max_s)
        return True


@dataclass
class SerialLink:
    """Frames in, events out, over one open serial port.

    The link owns the frame decoder, so its corrupt/lost counters cover the
    whole session.
    """

    port: serial.SerialBase
    url: str
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    bytes_received: int = 0
    _tx_seq: int = 0
    # Events decoded but not yet taken: a caller that stops at DONE must not lose what came in the same read
    # (a reset's HELLO right behind it); the next events() call yields them first.
    _backlog: deque[Event] = field(default_factory=deque)

    def send(self, msg_type: MsgType, payload: bytes = b"") -> None:
        """Send one command frame, after a lone delimiter.

        The delimiter ends whatever the line carried before (a glitch byte, half a request the board
        dropped), so that cannot merge into this frame.
        """
        frame = b"\x00" + encode_frame(msg_type, self._tx_seq, payload)
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        try:
            self.port.write(frame)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkDisconnected(
                f"lost {self.url} while sending: {exc}; check the board and re-run"
            ) from exc

    def _read_some(self) -> bytes:
        """What has arrived (up to one chunk), b"" after a poll interval of nothing.

        Never loses bytes at a disconnect: pyserial's socket read() gathers into a buffer it drops when
        the peer closes, so socket:// is read from its socket here; other ports only ever read what
        they report waiting (or one byte), so an error can only come before anything was taken.
        """
        port = self.port
        if isinstance(port, protocol_socket.Serial):
            sock = port._socket
            if sock is None:
                raise serial.SerialException("port not open")
            ready, _, _ = select.select([sock], [], [], _POLL_S)
            if not ready:
                return b""
            data = sock.recv(_READ_CHUNK)
            if not data:
                raise serial.SerialException("the other end closed the connection")
            return data
        waiting = port.in_waiting
        return bytes(port.read(min(waiting, _READ_CHUNK) if waiting else 1))

    @overload
    def events(self, wait: Wait | float, what: str = "", idle: Literal[False] = False) -> Iterator[Event]: ...
    @overload
    def events(self, wait: Wait | float, what: str = "", *, idle: Literal[True]) -> Iterator[Event | None]: ...

    def events(self, wait: Wait | float, what: str = "", idle: bool = False) -> Iterator[Event | None]:
        """Yield device events until `wait`'s deadline, then raise LinkTimeout.

        The caller moves the deadline with `wait.progress()` when an event is what it waited for; a
        number instead of a Wait is a fixed deadline that many seconds away. With `idle`, None is yielded
        after every read (at least every poll interval, whatever arrives), so the caller can ask the board
        again meanwhile, even through a flood of LOG frames.
        Every event decoded from bytes that arrived is yielded before a disconnect is raised.
        """
        if not isinstance(wait, Wait):
            wait = Wait(what or "the board", float(wait))
        while True:
            while self._backlog:
                wait.other_frames += 1  # until the caller calls it progress
                yield self._backlog.popleft()
            try:
                data = self._read_some()
            except (serial.SerialException, OSError) as exc:
                raise LinkDisconnected(
                    f"lost {self.url} while waiting for {wait.what}: {exc}; the board reset, the "
                    "cable came loose or the emulator exited"
                ) from exc
            if data:
                self.bytes_received += len(data)
                wait.bytes_in += len(data)
                framed, corrupt = self.decoder.bytes_in_frames, self.decoder.frames_corrupt
                frames = self.decoder.feed(data)
                wait.noise_bytes = max(0, wait.noise_bytes + len(data) - (self.decoder.bytes_in_frames - framed))
                wait.corrupt_frames += self.decoder.frames_corrupt - corrupt
                for frame in frames:
                    try:
                        self._backlog.append(parse_event(frame))
                    except ProtocolError:
                        self.decoder.count_unusable()
                        wait.corrupt_frames += 1
                while self._backlog:
                    wait.other_frames += 1
                    yield self._backlog.popleft()
            if idle:
                yield None
            if wait.expired():
                raise wait.timeout(self.url)

    def close(self) -> None:
        """Close the port; safe to call twice."""
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass
