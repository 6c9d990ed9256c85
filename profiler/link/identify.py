"""Which board is on a port: its HELLO, asked for before a run is planned (`run --port URL` without
`--device`).

The board names itself in HELLO (`stm32f405`, `riscv32-virt`, `mps3-an547`, ...), which is what a user
would otherwise type as `--device`. The same rules as the session's handshake hold: a delimiter before
each request, HELLO_REQ again with backoff, boot text and noise skipped, one absolute deadline.
"""

from __future__ import annotations

from profiler.link.protocol import Boot, Hello, MsgType
from profiler.link.transport import ASK_MAX_S, Backoff, SerialLink, Wait, open_serial


def ask_hello(url: str, baud: int, seconds: float) -> Hello:
    """The HELLO of the board at `url`; LinkTimeout (naming silence or noise) when none comes in time."""
    link = SerialLink(open_serial(url, baud, connect_timeout_s=min(5.0, seconds)), url)
    try:
        wait = Wait("the board's HELLO, to tell which board it is (or pass --device)", seconds)
        asks = Backoff(0.0, ASK_MAX_S)
        for event in link.events(wait, idle=True):
            if isinstance(event, Boot):
                return event.hello
            if isinstance(event, Hello):
                return event
            if asks.due():
                link.send(MsgType.HELLO_REQ)
                wait.requests += 1
        raise AssertionError("unreachable: events() ends only by raising")
    finally:
        link.close()
