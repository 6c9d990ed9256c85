"""The lab inventory: a TOML file naming each bench board and how to reach it.

```toml
[boards.c3-left]                  # `run --board c3-left`
device = "esp32c3"                # a board profile (or family) from platforms/boards.py
usb_serial = "F4:12:FA:9C:21:08"  # finds the port by USB serial number (survives renames)
port = "/dev/ttyACM0"             # or a fixed port / rfc2217://host:port
flasher = "esptool"               # one of the family adapter's flashers
reset = "usb-jtag"                # dtr-rts | usb-jtag | manual | probe
probe = "066DFF485153826687124832"  # debug probe serial (pyOCD -u, OpenOCD adapter serial)
power_meter = "ppk2:/dev/ttyACM3" # kind[:address]
```

Optional keys for special benches: `openocd_config` (list of OpenOCD
scripts) and `flash_baud` (esptool).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platforms.boards import resolve_board
from platforms.flasher import FlashOptions
from profiler.discovery import Device, identify
from profiler.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_VAR = "TINY_PROFILER_HARDWARE_MAP"
RESET_METHODS = ("dtr-rts", "usb-jtag", "manual", "probe")
_KEYS = {"device", "port", "usb_serial", "flasher", "reset", "probe", "power_meter", "openocd_config", "flash_baud"}


@dataclass(frozen=True)
class BenchBoard:
    """One board on the bench."""

    name: str
    device: str
    port: str | None = None
    usb_serial: str | None = None
    flasher: str | None = None
    reset: str | None = None
    probe: str | None = None
    power_meter: str | None = None
    openocd_config: tuple[str, ...] = ()
    flash_baud: int | None = None

    def flash_options(self, flasher: str | None = None) -> FlashOptions:
        """The adapter options this entry asks for (`flasher` from the command line wins)."""
        return FlashOptions(flasher=flasher or self.flasher, probe=self.probe, reset_method=self.reset,
                            usb_serial=self.usb_serial, openocd_config=self.openocd_config,
                            flash_baud=self.flash_baud)


@dataclass(frozen=True)
class HardwareMap:
    """A parsed hardware map file."""

    path: Path
    boards: dict[str, BenchBoard] = field(default_factory=dict)

    def board(self, name: str) -> BenchBoard:
        """The entry named `name`, or a ConfigError listing the names there are."""
        if name not in self.boards:
            known = ", ".join(sorted(self.boards)) or "none"
            raise ConfigError(f"no board {name!r} in the hardware map {self.path} (it has: {known}); "
                              "add it, or draft entries with `tiny-profiler devices --write-map FILE`")
        return self.boards[name]


def default_path() -> Path | None:
    """$TINY_PROFILER_HARDWARE_MAP, ./hardware-map.toml, or ~/.config/tiny-profiler/hardware-map.toml."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    for candidate in (Path("hardware-map.toml"), Path.home() / ".config" / "tiny-profiler" / "hardware-map.toml"):
        if candidate.is_file():
            return candidate
    return None


def load(path: Path | None) -> HardwareMap:
    """Read and check a hardware map; every problem is one ConfigError naming the file and entry."""
    if path is None:
        path = default_path()
        if path is None:
            raise ConfigError(f"--board needs a hardware map: pass --hardware-map FILE, set {ENV_VAR}, or draft "
                              "one with `tiny-profiler devices --write-map hardware-map.toml`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"hardware map {path} not found; draft one with `tiny-profiler devices --write-map "
                          f"{path}`") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"hardware map {path} is not valid TOML ({exc}); fix it, see "
                          "examples/hardware-map.toml") from exc
    extra = set(data) - {"boards"}
    if extra:
        raise ConfigError(f"hardware map {path}: unknown top-level key(s) {', '.join(sorted(extra))}; "
                          "put each board under [boards.NAME]")
    boards: dict[str, BenchBoard] = {}
    for name, entry in (data.get("boards") or {}).items():
        boards[name] = _entry(path, name, entry)
    return HardwareMap(path, boards)


def _text(path: Path, name: str, entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"hardware map {path}, board {name}: {key} must be a non-empty string")
    return value.strip()


def _entry(path: Path, name: str, entry: Any) -> BenchBoard:
    where = f"hardware map {path}, board {name}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table [boards.{name}] with device = ...")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}")
    device = _text(path, name, entry, "device")
    if device is None:
        raise ConfigError(f"{where}: device is missing; name a board such as esp32c3 or stm32f405")
    try:
        resolve_board(device)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    reset = _text(path, name, entry, "reset")
    if reset is not None and reset not in RESET_METHODS:
        raise ConfigError(f"{where}: reset {reset!r} is not one of {', '.join(RESET_METHODS)}")
    meter = _text(path, name, entry, "power_meter")
    if meter is not None and not re.match(r"^[a-z0-9_-]+(:.+)?$", meter):
        raise ConfigError(f"{where}: power_meter {meter!r} is not kind[:address], e.g. ppk2:/dev/ttyACM3")
    scripts = entry.get("openocd_config", [])
    if not isinstance(scripts, list) or not all(isinstance(s, str) for s in scripts):
        raise ConfigError(f"{where}: openocd_config must be a list of OpenOCD script names")
    baud = entry.get("flash_baud")
    if baud is not None and (not isinstance(baud, int) or baud <= 0):
        raise ConfigError(f"{where}: flash_baud must be a positive integer")
    return BenchBoard(
        name=name, device=device, port=_text(path, name, entry, "port"),
        usb_serial=_text(path, name, entry, "usb_serial"), flasher=_text(path, name, entry, "flasher"),
        reset=reset, probe=_text(path, name, entry, "probe"), power_meter=meter,
        openocd_config=tuple(scripts), flash_baud=baud,
    )


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def draft(devices: Sequence[Device]) -> str:
    """A hardware map drafted from what is plugged in: one entry per serial port with a family guess."""
    from platforms.boards import boards_of

    lines = [
        "# tiny-profiler hardware map, drafted by `tiny-profiler devices --write-map`.",
        "# Check each `device` (the guess is the family's default board) and rename entries as you like;",
        "# `tiny-profiler run --board NAME --hardware-map THIS_FILE` uses them. Keys: docs/hardware.md.",
    ]
    counts: dict[str, int] = {}
    for device in devices:
        if not device.port or not device.families:
            continue
        family = device.families[0]
        counts[family] = counts.get(family, 0) + 1
        board = boards_of(family)[0]
        lines += ["", f"[boards.{family}-{counts[family]}]", f"device = {_quote(board.name)}"]
        lines.append(f"# {device.kind}: {device.description}")
        if device.serial_number:
            lines.append(f"usb_serial = {_quote(device.serial_number)}")
        lines.append(f"{'# ' if device.serial_number else ''}port = {_quote(device.port)}")
        if "probe" in device.role and board.reset_method == "probe" and device.serial_number:
            lines.append(f"probe = {_quote(device.serial_number)}")
        if board.flasher:
            lines.append(f"flasher = {_quote(board.flasher)}")
        kind = identify(device.vid, device.pid)
        lines.append(f"reset = {_quote((kind.reset_method if kind else None) or board.reset_method)}")
        lines.append('# power_meter = "ppk2:/dev/ttyACM3"')
    if len(lines) == 3:
        lines += ["", "# No board with a known USB-UART or probe is plugged in; an entry looks like:",
                  "# [boards.c3-left]", '# device = "esp32c3"', '# usb_serial = "F4:12:FA:9C:21:08"']
    return "\n".join(lines) + "\n"

