"""Serial link to a board through pyserial's `serial_for_url`.

Device paths (`/dev/ttyACM0`), `socket://host:port` (QEMU, pytest-embedded
style loopback) and `rfc2217://host:port` (ser2net, labgrid) all go through the
same code, so an emulated board exercises exactly the path hardware does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import serial

from profiler.errors import LinkDisconnected, LinkError, LinkTimeout, ProtocolError
from profiler.protocol import Event, FrameDecoder, MsgType, encode_frame, parse_event

_READ_CHUNK = 4096
_POLL_S = 0.05


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

    def send(self, msg_type: MsgType, payload: bytes = b"") -> None:
        """Send one command frame."""
        frame = encode_frame(msg_type, self._tx_seq, payload)
        if self._tx_seq == 0:
            # A lone delimiter first: a glitch byte on the line must not merge into our first frame.
            frame = b"\x00" + frame
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        try:
            self.port.write(frame)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkDisconnected(
                f"lost {self.url} while sending: {exc}; check the board and re-run"
            ) from exc

    def events(self, timeout_s: float, what: str) -> Iterator[Event]:
        """Yield device events; raise LinkTimeout after `timeout_s` of silence.

        The timeout restarts with every event, so a long generation is fine as
        long as the board keeps talking.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                data = self.port.read(_READ_CHUNK)
            except (serial.SerialException, OSError) as exc:
                raise LinkDisconnected(
                    f"lost {self.url} while waiting for {what}: {exc}; the board reset, the "
                    "cable came loose or the emulator exited"
                ) from exc
            if data:
                self.bytes_received += len(data)
                for frame in self.decoder.feed(data):
                    try:
                        event = parse_event(frame)
                    except ProtocolError:
                        self.decoder.frames_corrupt += 1
                        continue
                    deadline = time.monotonic() + timeout_s
                    yield event
            elif time.monotonic() > deadline:
                raise LinkTimeout(
                    f"no answer from {self.url} for {timeout_s:.0f} s while waiting for {what}; "
                    "check the baud rate and that the profiler firmware is on the board"
                )

    def close(self) -> None:
        """Close the port; safe to call twice."""
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass
