"""Boards on other hosts: labgrid places, and what RFC2217 can and cannot do.

A lab that outgrows one host publishes its boards with labgrid: an exporter
on each lab host serves every board's UART through ser2net as RFC2217 and
tells a coordinator; a user acquires a *place* from the coordinator, uses its
resources, and releases it. `--place NAME` does exactly that through
`labgrid-client` (`acquire`, `env`, `release`), reads the place's
`NetworkSerialPort` as `rfc2217://host:port`, and releases the place on every
exit path (the session closes it at teardown like the board lock). The
coordinator comes from `LG_COORDINATOR`, as for every labgrid tool. A place
may name its board profile in a tag, `device=stm32f405`.

labgrid is the `[lab]` extra; it is driven through its command-line client,
found beside this Python or on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from profiler.errors import BoardBusy, ConfigError, LinkError, ToolMissing

INSTALL_HINT = "pip install 'tiny-llm-edge-profiler[lab]' (it brings labgrid and its labgrid-client)"
_TIMEOUT_S = 60.0


def labgrid_client() -> str:
    """The labgrid-client program, beside this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "labgrid-client"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("labgrid-client")
    if found is None:
        raise ToolMissing(f"--place needs labgrid, which is not installed; {INSTALL_HINT}")
    return found


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


@dataclass
class PlaceLease:
    """An acquired labgrid place and the serial endpoint it holds; `close` releases it (twice is fine)."""

    name: str
    port: str
    device: str | None = None
    coordinator: str | None = None
    _released: bool = False

    def close(self) -> None:
        """Release the place."""
        if self._released:
            return
        self._released = True
        result = _client(self.name, self.coordinator, "release", check=False)
        if result.returncode != 0 and "not acquired" not in result.stderr:
            raise LinkError(f"could not release labgrid place {self.name}: {_last_line(result.stderr)}; "
                            f"release it with `labgrid-client -p {self.name} release`")

    def __repr__(self) -> str:
        return f"labgrid place {self.name}"


def _client(place: str, coordinator: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [labgrid_client(), *(["-x", coordinator] if coordinator else []), "-p", place, *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LinkError(f"labgrid-client {args[0]} for place {place} got no answer in {_TIMEOUT_S:.0f} s; "
                        "check LG_COORDINATOR and that the coordinator runs") from None
    if check and result.returncode != 0:
        _raise_for(place, args[0], result.stderr)
    return result


def _raise_for(place: str, action: str, stderr: str) -> None:
    line = _last_line(stderr)
    if "already acquired by" in line:
        holder = re.search(r"already acquired by (\S+?)\.?(\s|$)", line)
        who = holder.group(1) if holder else "another user"
        raise BoardBusy(f"labgrid place {place} is acquired by {who}; wait for them to release it, or reserve it "
                        f"with `labgrid-client reserve --wait name={place}`")
    if "have already acquired" in line:
        raise BoardBusy(f"labgrid place {place} is already acquired by you (another shell or job); release it "
                        f"with `labgrid-client -p {place} release`")
    if "not found" in line.lower() or ("pattern" in line.lower() and "matches" in line.lower()):
        raise ConfigError(f"labgrid place {place}: {line}; list the places with `labgrid-client places`")
    if "unavailable" in line.lower() or "connect" in line.lower():
        raise LinkError(f"labgrid coordinator unreachable ({line}); set LG_COORDINATOR=host:port")
    raise LinkError(f"labgrid-client {action} for place {place} failed: {line}")


def serial_url(resources: list[dict[str, Any]]) -> str | None:
    """`rfc2217://host:port` (or `socket://` for a raw one) of the first NetworkSerialPort in `env` output."""
    for entry in resources:
        for cls, params in entry.items():
            if cls == "NetworkSerialPort" and isinstance(params, dict) and params.get("port"):
                scheme = "socket" if params.get("protocol") == "raw" else "rfc2217"
                return f"{scheme}://{params.get('host', 'localhost')}:{params['port']}"
    return None


def _tags(show: str) -> dict[str, str]:
    found = re.search(r"^\s*tags:\s*(.*)$", show, re.MULTILINE)
    if not found:
        return {}
    return dict(tag.split("=", 1) for tag in re.split(r"[,\s]+", found.group(1).strip()) if "=" in tag)


def acquire_place(name: str, coordinator: str | None = None) -> PlaceLease:
    """Acquire place `name` and read its serial endpoint; released again if anything after acquiring fails."""
    import yaml  # labgrid depends on PyYAML, so it is there whenever labgrid is

    coordinator = coordinator or os.environ.get("LG_COORDINATOR") or None
    _client(name, coordinator, "acquire")
    lease = PlaceLease(name, "", coordinator=coordinator)
    try:
        env = yaml.safe_load(_client(name, coordinator, "env").stdout) or {}
        resources = ((env.get("targets") or {}).get(name) or {}).get("resources") or []
        url = serial_url(resources)
        if url is None:
            raise ConfigError(f"labgrid place {name} holds no NetworkSerialPort; add the board's serial port to "
                              "the exporter (RawSerialPort or USBSerialPort) and match it to the place")
        lease.port = url
        lease.device = _tags(_client(name, coordinator, "show").stdout).get("device")
    except BaseException:
        lease.close()
        raise
    return lease


def plan_on_place(options: Any, place: str | None, plan: Callable[..., tuple[Any, Path]],
                  **kwargs: Any) -> tuple[Any, Path]:
    """`plan(options)` on the place's board: its port (and device tag) filled in, the lease held by the session."""
    if place is None:
        return plan(options, **kwargs)
    if options.port is not None or options.emulate:
        raise ConfigError("--place gives the port; drop --port/--emulate")
    lease = acquire_place(place)
    try:
        device = options.device or lease.device
        if device is None:
            raise ConfigError(f"labgrid place {place} has no device tag; pass --device (or tag the place: "
                              f"labgrid-client -p {place} set-tags device=stm32f405)")
        session, path = plan(replace(options, port=lease.port, device=device), **kwargs)
    except BaseException:
        lease.close()
        raise
    session.holds.insert(0, lease)  # released last, after the board lock
    return session, path


def rfc2217_reset_note(port: str | None, flash: bool, reset_method: str | None, board: str) -> str | None:
    """A warning when a board would be reset into its bootloader through DTR/RTS over RFC2217."""
    if not flash or port is None or not port.startswith("rfc2217://") or reset_method not in ("dtr-rts", "usb-jtag"):
        return None
    return (f"resetting {board} through DTR/RTS over RFC2217 is unreliable (network delay stretches esptool's reset "
            "pulses; esptool warns about it too); if it does not enter its bootloader, set reset = \"manual\" for "
            "it in the hardware map and hold BOOT while it flashes, or flash it on the host it is plugged into and "
            "run with --no-flash")
