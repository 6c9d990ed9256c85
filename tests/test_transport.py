"""The serial link's deadlines and reads, over a real loopback TCP socket opened as pyserial `socket://`.

The peer stands for a board's UART at the byte level: it writes real protocol frames (or nothing, or
noise) and closes when told, so the link is tested on exactly what crosses a wire.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from profiler.errors import LinkDisconnected, LinkTimeout
from profiler.link.protocol import MsgType, Token, encode_frame, token_payload
from profiler.link.transport import SerialLink, Wait, open_serial


def _peer(talk: Callable[[socket.socket], None]) -> Iterator[SerialLink]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        try:
            conn.recv(64)  # the host's first request: pyserial's open() discards whatever came before it
            talk(conn)
        except OSError:
            pass  # the link closed first
        finally:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    link = SerialLink(open_serial(f"socket://127.0.0.1:{port}", 115200, connect_timeout_s=5), "board")
    link.send(MsgType.HELLO_REQ)
    try:
        yield link
    finally:
        link.close()
        server.close()
        thread.join(timeout=5)


def _log_flood(conn: socket.socket) -> None:
    for seq in range(10_000):
        conn.sendall(encode_frame(MsgType.LOG, seq, b"still booting"))
        time.sleep(0.005)


def _noise(conn: socket.socket) -> None:
    rng = random.Random(1)
    for _ in range(200):
        conn.sendall(bytes(rng.randrange(1, 256) for _ in range(5)))
        time.sleep(0.01)


def _silence(conn: socket.socket) -> None:
    time.sleep(1.6)  # past the 1 s deadline, then closed


@pytest.mark.parametrize(("talk", "needle"), [
    (_log_flood, r"0 bytes of noise, 0 corrupt and \d{2,} other frames"),
    (_noise, r"[1-9]\d* bytes of noise, 0 corrupt and 0 other frames"),
    (_silence, r"^silence: no bytes from board for 1\.\d s while waiting for DONE"),
])
def test_what_is_not_progress_never_moves_the_deadline(talk: Callable[[socket.socket], None], needle: str) -> None:
    for link in _peer(talk):
        started = time.monotonic()
        with pytest.raises(LinkTimeout, match=needle):
            for _event in link.events(Wait("DONE", 1.0), idle=True):
                pass  # nothing that arrives is the DONE waited for
        assert 1.0 <= time.monotonic() - started < 1.5


def test_every_frame_that_arrived_before_the_peer_closed_is_yielded() -> None:
    tokens = [Token(rep=0, index=i, pos=5 + i, token_id=100 + i, ticks=1000 * i) for i in range(24)]
    burst = b"".join(encode_frame(MsgType.TOKEN, i, token_payload(t)) for i, t in enumerate(tokens))

    def burst_then_close(conn: socket.socket) -> None:
        conn.sendall(burst + encode_frame(MsgType.TOKEN, 24, token_payload(tokens[0]))[:9])  # and half a frame
        conn.shutdown(socket.SHUT_RDWR)

    for link in _peer(burst_then_close):
        got = []
        with pytest.raises(LinkDisconnected, match="closed the connection"):
            for event in link.events(Wait("tokens", 5.0)):
                got.append(event)
        assert got == tokens
