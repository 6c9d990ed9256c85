"""`tiny-profiler doctor`: everything a run can need, checked in one go.

Each check is one row: ok, or missing with the exact fix (the Debian package,
the pip command, the shell command). A row is `required` when the emulated
default (`make demo`: the emulated STM32 board) cannot run without it; the
command exits 0 when every required row is ok, whatever else is missing.
"""

from __future__ import annotations

import contextlib
import grp
import importlib.metadata
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from platforms import adapter_for, families
from platforms.boards import BOARDS
from platforms.esp_qemu import INSTALL_HINT as ESP_QEMU_HINT
from platforms.esp_qemu import find_fork, machines
from platforms.flasher import flasher_class
from profiler.firmware import FIRMWARE_DIR, cache_dir, port_toolchain

DIST = "tiny-llm-edge-profiler"
DEFAULT_FAMILY = "stm32"  # `make demo`: --device stm32 --emulate
UDEV_FILE = "/etc/udev/rules.d/70-tiny-profiler.rules"


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    group: str
    name: str
    status: str  # ok | missing | note (nothing to check, e.g. no board attached)
    detail: str  # what was found, or what is wrong
    fix: str | None = None
    required: bool = False  # the emulated default needs it

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `doctor --json` rows."""
        return asdict(self)


def _ok(group: str, name: str, detail: str, required: bool = False) -> Check:
    return Check(group, name, "ok", detail, None, required)


def _missing(group: str, name: str, detail: str, fix: str, required: bool = False) -> Check:
    return Check(group, name, "missing", detail, fix, required)


def _apt(package: str) -> str:
    return f"sudo apt-get install {package}"


def program(group: str, name: str, package_fix: str, required: bool = False,
            candidates: tuple[str, ...] = ()) -> Check:
    """A program on PATH (any of `candidates`, else `name`)."""
    for candidate in candidates or (name,):
        found = shutil.which(candidate)
        if found:
            return _ok(group, name, found, required)
    return _missing(group, name, "not on PATH", package_fix, required)


def python_packages() -> list[Check]:
    """The distribution's requirements, core and per extra, against what is installed."""
    from packaging.requirements import Requirement

    try:
        requires = importlib.metadata.requires(DIST) or []
    except importlib.metadata.PackageNotFoundError:
        return [_missing("python", DIST, "the profiler is not installed as a package",
                         "make setup (or pip install -e . in the checkout)", required=True)]
    extras = [e for e in importlib.metadata.metadata(DIST).get_all("Provides-Extra") or []
              if e not in ("dev", "train")]  # test and training tools are not a run's business
    rows = []
    for line in requires:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or marker.evaluate({"extra": ""}):
            extra = None  # a core dependency (for this Python)
        else:
            extra = next((e for e in extras if marker.evaluate({"extra": e})), None)
            if extra is None:
                continue  # another Python's, or a dev/train extra's
        name = f"{requirement.name} ({extra} extra)" if extra else requirement.name
        fix = f"pip install '{DIST}[{extra}]'" if extra else f"pip install '{requirement}'"
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            rows.append(_missing("python", name, "not installed", fix, required=extra is None))
            continue
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            rows.append(_missing("python", name, f"{version} installed, {requirement.specifier} needed", fix,
                                 required=extra is None))
        else:
            rows.append(_ok("python", name, version, required=extra is None))
    return rows


def _newlib(compiler: str) -> bool:
    """The cross compiler finds a C library for a Cortex-M4F (gcc prints the bare name when it has none)."""
    found = shutil.which(compiler)
    if not found:
        return False
    result = subprocess.run([found, "-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
                             "-print-file-name=libc.a"], capture_output=True, text=True, check=False, timeout=10)
    return os.path.isabs(result.stdout.strip())


def family_checks(family: str) -> list[Check]:
    """Per family: cross compiler, QEMU binary and machine of every emulatable board, and flashers."""
    boards = [b for b in BOARDS if b.family == family]
    adapter = adapter_for(boards[0])
    default = family == DEFAULT_FAMILY
    rows = []
    ports = [b.firmware_port for b in boards if b.firmware_port and (FIRMWARE_DIR / "ports" / b.firmware_port
                                                                     / "port.mk").is_file()]
    for toolchain in dict.fromkeys(port_toolchain(port) for port in ports):  # each port.mk names its compiler
        rows.append(program(family, toolchain.compiler, _apt(toolchain.debian_package), required=default))
        if toolchain.compiler == "arm-none-eabi-gcc":
            rows.append(_ok(family, "newlib for Cortex-M", "libc.a found", default) if _newlib(toolchain.compiler)
                        else _missing(family, "newlib for Cortex-M", "no libc.a for the compiler",
                                      _apt("libnewlib-arm-none-eabi"), default))
    for board in (b for b in boards if b.qemu_machine):
        spec = adapter.emulate(board, Path("firmware.elf"), Path("model.tpm")).spec
        name = f"{spec.binary} -M {spec.machine} ({board.name})"
        required = default and board is boards[0]
        path = shutil.which(spec.binary)
        if path is None:
            rows.append(_missing(family, name, "not on PATH", _apt(spec.debian_package), required))
        elif spec.machine not in machines(path):
            rows.append(_missing(family, name, f"{path} has no machine {spec.machine}",
                                 f"{_apt(spec.debian_package)} (QEMU 7.2 or later)", required))
        else:
            rows.append(_ok(family, name, path, required))
    if family == "esp32":
        for board in boards:
            fork = find_fork(board)
            name = f"Espressif QEMU fork -M {board.flash_target} ({board.name})"
            rows.append(_ok(family, name, fork) if fork else _missing(family, name, "not found", ESP_QEMU_HINT))
        rows.append(program(family, "idf.py (ESP-IDF, Xtensa firmware)", "install ESP-IDF and source its export.sh"))
    for status in (flasher_class(name).status() for name in adapter.flashers):  # each flasher says what it needs
        rows.append(_ok(family, status.what, status.detail) if status.ok
                    else _missing(family, status.what, status.detail, status.fix or ""))
    return rows


def service_programs() -> list[Check]:
    """Monitoring, lab and report programs: none is needed for a run on the emulated board."""
    return [
        program("tools", "make", _apt("make"), required=True),
        program("tools", "promtool", _apt("prometheus")),
        program("tools", "prometheus", _apt("prometheus")),
        program("tools", "pushgateway", _apt("prometheus-pushgateway"),
                candidates=("prometheus-pushgateway", "pushgateway")),
        program("tools", "alertmanager", _apt("prometheus-alertmanager"),
                candidates=("prometheus-alertmanager", "alertmanager")),
        program("tools", "ser2net", _apt("ser2net")),
        program("tools", "labgrid-client", f"pip install '{DIST}[lab]'"),
        program("tools", "chromium (reports)", _apt("chromium"), candidates=("chromium", "chromium-browser")),
    ]


def serial_permissions() -> list[Check]:
    """The dialout group (serial ports) and a udev rule for our USB probes (not needed when emulating)."""
    rows = []
    try:
        dialout = grp.getgrnam("dialout").gr_gid
    except KeyError:
        dialout = None
    if os.geteuid() == 0:
        rows.append(_ok("serial", "dialout group", "running as root"))
    elif dialout is not None and dialout in os.getgroups():
        rows.append(_ok("serial", "dialout group", "the user is a member"))
    else:
        rows.append(_missing("serial", "dialout group", "the user is not a member (serial ports refuse access)",
                             "sudo usermod -aG dialout $USER, then log out and back in"))
    from profiler.discovery import KNOWN_USB

    vendors = {f"{kind.vid:04x}" for kind in KNOWN_USB}
    covered = set()
    for directory in ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d"):
        for rules in Path(directory).glob("*.rules"):
            with contextlib.suppress(OSError):
                text = rules.read_text(errors="replace").lower()
                covered |= {vid for vid in vendors if vid in text}
    if os.geteuid() == 0 or covered:
        rows.append(_ok("serial", "udev rules for USB probes",
                        "running as root" if os.geteuid() == 0 else f"vendors {', '.join(sorted(covered))}"))
    else:
        rows.append(_missing("serial", "udev rules for USB probes", "no rule names a probe vendor",
                             f"add the rules of docs/hardware.md to {UDEV_FILE}, then "
                             "sudo udevadm control --reload && sudo udevadm trigger"))
    return rows


def attached() -> list[Check]:
    """Boards and probes plugged in, with what blocks them."""
    from profiler.discovery import discover

    try:
        devices, notes = discover()
    except Exception as exc:  # discovery reads sysfs and libusb: a broken host is a row, not a crash
        return [Check("boards", "attached boards and probes", "note", f"cannot list devices: {exc}")]
    rows = [Check("boards", d.port or d.usb_id or d.description, "ok" if d.status == "ok" else "missing",
                  f"{d.kind} ({', '.join(d.families) or 'unknown family'}): {d.status}", d.fix) for d in devices]
    if not rows:
        rows.append(Check("boards", "attached boards and probes", "note",
                          "none attached (the emulated boards need none)" + (f"; {notes[0]}" if notes else "")))
    return rows


def _reachable(url: str, path: str = "") -> str | None:
    """None when `url` answers HTTP (any status), else why not."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=2):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def endpoints(pushgateway: str | None, otlp: str | None) -> list[Check]:
    """The pushgateway and OTLP endpoints the environment (or the config file) sets, if any."""
    rows = []
    for name, url, path, variable in (("pushgateway", pushgateway, "/-/ready", "TINY_PROFILER_PUSHGATEWAY"),
                                      ("OTLP endpoint", otlp, "/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT")):
        if not url:
            rows.append(Check("export", name, "note", f"none configured ({variable} or tiny-profiler.toml)"))
            continue
        why = _reachable(url, path)
        if why is None:
            rows.append(_ok("export", name, f"{url} answers"))
        else:
            host = urllib.parse.urlsplit(url).netloc or url
            rows.append(_missing("export", name, f"{url}: {why}",
                                 f"start it (make monitor-start serves a pushgateway) or fix the URL ({host})"))
    return rows


def writable(name: str, directory: Path, required: bool) -> Check:
    """`directory`, or the nearest parent that exists when it does not yet, takes new files (nothing is made)."""
    existing = directory.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return _ok("files", name, str(directory) + ("" if existing == directory.absolute() else " (made on use)"),
                   required)
    return _missing("files", name, f"{existing} is not a writable directory",
                    f"make {existing} writable, or point it elsewhere (TINY_PROFILER_CACHE, --out)", required)


def run_checks(pushgateway: str | None, otlp: str | None, results: Path) -> list[Check]:
    """Every check, in table order; the endpoints and results directory as the environment and config set them."""
    rows = python_packages()
    for family in families():
        rows += family_checks(family)
    rows += service_programs()
    rows += serial_permissions()
    rows += attached()
    rows += endpoints(pushgateway, otlp)
    rows.append(writable("firmware cache", cache_dir(), required=True))
    rows.append(writable("results directory", results, required=True))
    return rows


def emulated_default_ready(rows: list[Check]) -> bool:
    """True when nothing the emulated default needs is missing."""
    return all(row.status == "ok" for row in rows if row.required)


def rows_by_group(rows: list[Check]) -> Iterator[tuple[str, list[Check]]]:
    """Rows grouped in first-seen order."""
    for group in dict.fromkeys(row.group for row in rows):
        yield group, [row for row in rows if row.group == group]
