"""Where a run happens: an emulated board, or which real board on which port, flashed how.

The rules, in order:

1. `--board NAME` takes the bench entry from the hardware map (device, port or
   USB serial number, flasher, reset method, probe).
2. `--emulate` runs the emulated board; `--port` (or a bench entry) a real one.
3. With neither, a board QEMU can run is emulated (the embedded default).
4. Otherwise (no emulator for the board, or `--no-emulate`) the attached
   boards are discovered: exactly one whose USB identity fits the family is
   used; none or several stop with one line saying what was looked for.

A real port is checked before anything is launched: a device path must
exist and be readable and writeable by us.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from platforms.base import FlashOptions, PlatformAdapter, adapter_for
from platforms.boards import DEFAULT_BAUD, BoardProfile, resolve_board
from profiler import discovery
from profiler import hardware_map as hwmap
from profiler.errors import ConfigError, LinkError
from profiler.lab.lock import BoardLock
from profiler.link.identify import ask_hello


@dataclass(frozen=True)
class Placement:
    """The resolved target of a run."""

    board: BoardProfile
    adapter: PlatformAdapter
    emulate: bool
    port: str | None
    how: str  # emulated | --port | hardware map | discovered


def place(device: str | None, *, port: str | None = None, emulate: bool | None = None,
          bench: str | None = None, hardware_map: Path | None = None, flasher: str | None = None,
          discover: Callable[[], tuple[list[discovery.Device], list[str]]] = discovery.discover,
          hello_s: float = 20.0) -> Placement:
    """Resolve device, board entry, emulation and port; raise one ConfigError/LinkError when it cannot."""
    entry = hwmap.load(hardware_map).board(bench) if bench else None
    if entry is not None and device is not None and resolve_board(device) != resolve_board(entry.device):
        raise ConfigError(f"--device {device} contradicts board {entry.name} ({entry.device}) in the hardware map; "
                          "drop --device")
    name = device or (entry.device if entry else None)
    if name is None and port is not None:
        name = _board_on(check_port(port), hello_s)
    if name is None:
        raise ConfigError("say which board: --device NAME (e.g. stm32, esp32c3) or --board NAME from the hardware map")
    board = resolve_board(name)
    options = entry.flash_options(flasher) if entry else FlashOptions(flasher=flasher)
    adapter = adapter_for(board, options)
    if emulate and (port is not None or entry is not None):
        raise ConfigError(f"--emulate and {'--port' if port else '--board'} exclude each other; choose one")
    if emulate is None:
        emulate = port is None and entry is None and adapter.can_emulate(board)
    if emulate:
        if not adapter.can_emulate(board):
            raise ConfigError(f"{board.name} cannot be emulated: {adapter.no_emulator_hint(board)}")
        return Placement(board, adapter, True, None, "emulated")
    if options.flasher is not None:
        adapter.flasher_for(board)  # an impossible flasher stops here, before anything is launched
    if port is not None:
        return Placement(board, adapter, False, check_port(port), "--port")
    if entry is not None and entry.port is not None and entry.usb_serial is None:
        return Placement(board, adapter, False, check_port(entry.port), "hardware map")
    devices, _notes = discover()
    if entry is not None and entry.usb_serial is not None:
        found = [d for d in devices if d.port and d.serial_number == entry.usb_serial]
        if not found:
            raise LinkError(f"bench board {entry.name} (USB serial {entry.usb_serial}) is not attached; "
                            f"{_saw(devices)}; plug it in or fix usb_serial in {hardware_map or 'the hardware map'}")
        return Placement(board, adapter, False, check_port(str(found[0].port)), "hardware map")
    return _discovered(board, adapter, devices)


def _board_on(port: str, hello_s: float) -> str:
    """The board name a running profiler firmware gives in its HELLO, under the board's lock while asking."""
    with BoardLock.acquire(port):  # never ask a board another profiler is running
        hello = ask_hello(port, DEFAULT_BAUD, hello_s)
    try:
        resolve_board(hello.board)
    except ConfigError:
        raise ConfigError(f"the board on {port} calls itself {hello.board!r}, which is no known device; "
                          "pass --device NAME") from None
    return hello.board


def _saw(devices: Sequence[discovery.Device]) -> str:
    ports = [f"{d.port} ({d.usb_id or 'no USB id'})" for d in devices if d.port]
    return f"saw {', '.join(ports)}" if ports else "saw no serial ports"


def _discovered(board: BoardProfile, adapter: PlatformAdapter, devices: list[discovery.Device]) -> Placement:
    matches = discovery.candidates(board.family, devices)
    if len(matches) == 1:
        return Placement(board, adapter, False, check_port(str(matches[0].port)), "discovered")
    looked_for = sorted({f"{k.vid:04x}:{k.pid:04x}" if k.pid is not None else f"{k.vid:04x}:*"
                         for k in discovery.KNOWN_USB if board.family in k.families and "dfu" not in k.role})
    emulated = "--emulate" if board.qemu_machine else "--emulate on a board with an emulator (e.g. --device stm32)"
    if not matches:
        raise ConfigError(
            f"no {board.family} board attached: looked for serial ports with USB IDs {', '.join(looked_for)} "
            f"and {_saw(devices)}; connect one, or pass --port PORT, or {emulated}"
        )
    ports = ", ".join(f"{d.port} ({d.kind})" for d in matches)
    raise ConfigError(f"{len(matches)} ports could be the {board.name}: {ports}; choose one with --port PORT, "
                      "or name it with --board and a hardware map")


# pyserial URL handlers a board can sit behind; the first two are what labs and emulators use.
_NETWORK_SCHEMES = ("socket", "rfc2217")
_LOCAL_SCHEMES = ("loop", "spy", "hwgrep", "alt")


def check_url(url: str) -> str:
    """A pyserial URL with a known scheme and, for network ones, a host and a port in 1..65535."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _NETWORK_SCHEMES + _LOCAL_SCHEMES:
        raise ConfigError(f"--port {url}: unknown scheme {scheme or '(none)'}://; pass a device path such as "
                          "/dev/ttyACM0, socket://HOST:PORT or rfc2217://HOST:PORT")
    if scheme in _NETWORK_SCHEMES:
        try:
            number = parts.port
        except ValueError:
            number = -1  # urlsplit refuses ports past 65535 or not numbers
        if not parts.hostname or number is None or not 1 <= number <= 65535:
            raise ConfigError(f"--port {url}: a {scheme}:// URL needs a host and a port from 1 to 65535, "
                              f"e.g. {scheme}://127.0.0.1:4001")
    return url


def check_port(port: str) -> str:
    """A device path must exist and be ours to read and write; a URL must be one pyserial can open."""
    if "://" in port:
        return check_url(port)
    if not os.path.exists(port):
        raise LinkError(f"serial port {port} does not exist; check the cable and `tiny-profiler devices`, "
                        "or run on the emulated board with --emulate")
    status, fix = discovery.port_status(port)
    if status == "permission-denied":
        raise LinkError(f"no permission to open {port}; {fix}")
    return port
