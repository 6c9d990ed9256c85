"""A fault-injecting TCP proxy between the profiler's `socket://` link and an emulated board's UART.

What it stands for: the wire of a real lab. A USB-UART bridge that drops and corrupts bytes, a cable
that stalls or comes loose, a line that picks up noise, a board ROM that prints its banner before our
firmware speaks. Both ends are real: the profiler's pyserial link on one side, QEMU running the real
firmware (`tiny-profiler emulate --serial socket`) on the other. Only the wire in between is ours.

Board-to-host bytes are passed on frame by frame (split at the 0x00 delimiters, so a fault can be
placed after the Nth TOKEN frame exactly); the proxy notes every TOKEN frame it passed on intact, so a
test can check that each of them reached the session file.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from profiler.link.protocol import Frame, MsgType, decode_chunk, encode_frame

ESP32_ROM_BANNER = (
    b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
    b"configsip: 0, SPIWP:0xee\r\nclk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n"
    b"mode:DIO, clock div:2\r\nload:0x3fff0030,len:1184\r\nload:0x40078000,len:13132\r\n"
    b"entry 0x40080400\r\n"
)


@dataclass
class Faults:
    """What the wire does. Rates are per byte and apply to both directions."""

    seed: int = 1
    corrupt: float = 0.0  # a byte replaced by a random other byte
    drop: float = 0.0  # a byte lost
    preamble: bytes = b""  # sent to the host before the board's first answer (a ROM banner at boot)
    stall_after_tokens: int | None = None  # then hold the board's bytes for stall_s
    stall_s: float = 0.0
    close_after_tokens: int | None = None  # then close the host's connection (a cable pulled)
    noise_after_tokens: int | None = None  # then pass nothing more of the board, only random bytes
    noise_bytes_per_s: float = 25.0
    on_token: Callable[[int], None] | None = None  # called after each TOKEN frame passed on, with the count
    rewrite: Callable[[Frame], bytes | None] | None = None  # a board frame's new payload (re-encoded, CRC valid)
    lose: Callable[[str, Frame], bool] | None = None  # ("board" or "host", frame): True loses this whole frame


@dataclass
class FaultProxy:
    """One listening socket on 127.0.0.1; each host connection gets its own connection to the board."""

    board_port: int
    faults: Faults = field(default_factory=Faults)
    tokens_passed: list[tuple[int, int]] = field(default_factory=list)  # (wire rep, index), intact
    _listener: socket.socket | None = None
    _sockets: list[socket.socket] = field(default_factory=list)
    _closing: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """pyserial URL of the proxy."""
        assert self._listener is not None
        return f"socket://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> FaultProxy:
        """Listen and serve host connections in the background."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closing.set()
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections --------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                host, _ = self._listener.accept()
            except OSError:
                return
            board = socket.create_connection(("127.0.0.1", self.board_port))
            self._sockets += [host, board]
            rng = random.Random(self.faults.seed)
            host_gone = threading.Event()  # the host closed its end: what is sent after that reaches nobody
            threading.Thread(target=self._host_to_board, args=(host, board, random.Random(rng.random()), host_gone),
                             daemon=True).start()
            threading.Thread(target=self._board_to_host, args=(board, host, random.Random(rng.random()), host_gone),
                             daemon=True).start()

    def _damage(self, data: bytes, rng: random.Random) -> bytes:
        out = bytearray()
        for byte in data:
            roll = rng.random()
            if roll < self.faults.drop:
                continue
            if roll < self.faults.drop + self.faults.corrupt:
                out.append((byte + rng.randrange(1, 256)) & 0xFF)
            else:
                out.append(byte)
        return bytes(out)

    def _host_to_board(self, host: socket.socket, board: socket.socket, rng: random.Random,
                       host_gone: threading.Event) -> None:
        preamble = self.faults.preamble
        pending = bytearray()
        with contextlib.suppress(OSError):
            while data := host.recv(4096):
                if preamble:  # once the host listens (pyserial's open() discards what came before)
                    host.sendall(preamble)
                    preamble = b""
                pending += data
                while (end := pending.find(0)) >= 0:
                    chunk, pending = bytes(pending[: end + 1]), pending[end + 1 :]
                    if not self._lost("host", chunk):
                        board.sendall(self._damage(chunk, rng))
        host_gone.set()
        _shut(board)

    def _board_to_host(self, board: socket.socket, host: socket.socket, rng: random.Random,
                       host_gone: threading.Event) -> None:
        pending = bytearray()
        after_delimiter = True  # the host's decoder starts a new frame with the next byte
        tokens = 0
        try:
            while data := board.recv(4096):
                pending += data
                while (end := pending.find(0)) >= 0:
                    chunk, pending = bytes(pending[: end + 1]), pending[end + 1 :]
                    if self._lost("board", chunk):
                        continue
                    chunk, token = self._rewritten(chunk)
                    sent = self._damage(chunk, rng)
                    host.sendall(sent)
                    intact = sent == chunk
                    if token is not None:
                        # a token sent after the host left (a stall outlasting its deadline) never reached it
                        if intact and after_delimiter and not host_gone.is_set():
                            with self._lock:
                                self.tokens_passed.append(token)
                        tokens += 1
                        if self._after_token(tokens, host, rng):
                            return
                    if sent:
                        after_delimiter = sent.endswith(b"\x00")
        except OSError:
            pass
        _shut(host)

    def _lost(self, side: str, chunk: bytes) -> bool:
        frame = decode_chunk(chunk[:-1]) if self.faults.lose is not None else None
        return frame is not None and self.faults.lose is not None and self.faults.lose(side, frame)

    def _rewritten(self, chunk: bytes) -> tuple[bytes, tuple[int, int] | None]:
        """The chunk, re-encoded if `rewrite` changes it; (rep, index) when it is a TOKEN frame."""
        frame = decode_chunk(chunk[:-1])
        if frame is None:
            return chunk, None
        if self.faults.rewrite is not None and (payload := self.faults.rewrite(frame)) is not None:
            frame = Frame(frame.type, frame.seq, payload)
            chunk = encode_frame(frame.type, frame.seq, payload)
        if frame.type != MsgType.TOKEN:
            return chunk, None
        return chunk, (int.from_bytes(frame.payload[0:2], "little"), int.from_bytes(frame.payload[2:4], "little"))

    def _after_token(self, count: int, host: socket.socket, rng: random.Random) -> bool:
        """Faults placed after the Nth TOKEN frame; True when this connection is over."""
        faults = self.faults
        if faults.on_token is not None:
            faults.on_token(count)
        if count == faults.close_after_tokens:
            _shut(host)  # close() alone sends no FIN while the other direction's thread still reads it
            host.close()
            return True
        if count == faults.stall_after_tokens:
            time.sleep(faults.stall_s)
        if count == faults.noise_after_tokens:
            while not self._closing.is_set():
                time.sleep(1.0 / faults.noise_bytes_per_s)
                host.sendall(bytes([rng.randrange(256)]))
        return False


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
