"""`qemu://127.0.0.1:PORT`: an emulated board's UART, QEMU's TCP chardev on loopback.

It is pyserial's own `socket://` port in every respect but one: closing it
does not pause. pyserial's socket port sleeps 0.3 s after closing "in case of
quick reconnects" to a serial server; QEMU's UART is never reconnected to (the
board exits with its session), so the pause was only time lost at the end of
every emulated run.
"""

from __future__ import annotations

import contextlib
import socket

from serial.urlhandler.protocol_socket import Serial as SocketSerial

SCHEME = "qemu"


class Serial(SocketSerial):  # type: ignore[misc]
    """pyserial's socket port, opened from a qemu:// URL, closed without the reconnect pause."""

    _socket: socket.socket | None  # pyserial's attributes, declared for the type checker
    is_open: bool

    def from_url(self, url: str) -> tuple[str, int]:
        """Host and port of `qemu://host:port`, parsed by the socket port as `socket://host:port`."""
        return super().from_url("socket" + url[len(SCHEME):])  # type: ignore[no-any-return]

    def close(self) -> None:
        """Shut the connection down and close it (no pause: see the module docstring)."""
        if self.is_open:
            connection: socket.socket | None = self._socket
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    connection.close()
                self._socket = None
            self.is_open = False
