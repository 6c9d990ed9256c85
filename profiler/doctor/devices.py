"""`tiny-profiler devices`: what is plugged in, as a table or JSON, and an optional hardware-map draft."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from profiler import discovery
from profiler.errors import ConfigError


def show_devices(json_out: bool, write_map: Path | None) -> None:
    """Print the attached devices (stdout), notes (stderr), and write the map draft if asked."""
    devices, notes = discovery.discover()
    errors = Console(stderr=True)
    for note in notes:
        errors.print(f"note: {note}", markup=False)
    if json_out:
        print(json.dumps([d.to_dict() for d in devices], indent=2))
    elif not devices:
        print("no serial ports or known USB probes attached")
    else:
        table = Table("port", "usb", "serial number", "what", "family", "status")
        for d in devices:
            status = d.status if d.fix is None else f"{d.status}: {d.fix}"
            table.add_row(d.port or "(usb)", d.usb_id or "", d.serial_number or "", f"{d.kind} - {d.description}",
                          ", ".join(d.families) or "?", status)
        Console(soft_wrap=True).print(table)
    if write_map is not None:
        from profiler.hardware_map import draft

        if write_map.exists():
            raise ConfigError(f"{write_map} exists; choose another file name or remove it first")
        write_map.parent.mkdir(parents=True, exist_ok=True)
        write_map.write_text(draft(devices), encoding="utf-8")
        print(f"wrote {write_map}", file=sys.stderr)
