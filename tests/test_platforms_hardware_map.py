"""The TOML hardware map: parsing, one-line errors, and `run --board` resolving through it."""

from __future__ import annotations

from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from platforms.base import FlashOptions
from profiler import discovery, hardware_map
from profiler.api import RunOptions, plan_run
from profiler.errors import ConfigError, LinkError
from profiler.lab import placement

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hardware-map.toml"


def test_the_example_map_parses_into_flash_options() -> None:
    lab = hardware_map.load(EXAMPLE)
    assert sorted(lab.boards) == ["c3-left", "devkitc", "h743-openocd", "longan-nano", "nucleo-f405", "remote-c3"]
    c3 = lab.board("c3-left")
    assert (c3.device, c3.usb_serial, c3.reset, c3.power_meter) == ("esp32c3", "F4:12:FA:9C:21:08", "usb-jtag",
                                                                    "ppk2:/dev/ttyACM3")
    assert lab.board("nucleo-f405").flash_options() == FlashOptions(flasher="pyocd", probe="066DFF485153826687124832")
    assert lab.board("nucleo-f405").flash_options("openocd").flasher == "openocd"  # the command line wins
    assert lab.board("devkitc").flash_baud == 921600
    assert lab.board("longan-nano").openocd_config == ("interface/ftdi/minimodule.cfg", "target/gd32vf103.cfg")


@pytest.mark.parametrize(("text", "needle"), [
    ("[boards.x]\ndevice = 'esp32c3'\nbaud = 3\n", "board x: unknown key(s) baud; known: device, flash_baud"),
    ("[boards.x]\nport = '/dev/ttyUSB0'\n", "board x: device is missing"),
    ("[boards.x]\ndevice = 'esp99'\n", "board x: unknown device 'esp99'; known devices: stm32f405"),
    ("[boards.x]\ndevice = 'esp32'\nreset = 'button'\n", "reset 'button' is not one of dtr-rts, usb-jtag"),
    ("[boards.x]\ndevice = 'esp32'\npower_meter = 'PPK 2'\n", "power_meter 'PPK 2' is not kind[:address]"),
    ("[boards.x]\ndevice = 'esp32'\nflash_baud = -1\n", "flash_baud must be a positive integer"),
    ("[boards.x]\ndevice = 'esp32'\nopenocd_config = 'a.cfg'\n", "openocd_config must be a list"),
    ("[board.x]\ndevice = 'esp32'\n", "unknown top-level key(s) board; put each board under [boards.NAME]"),
    ("[boards.x\n", "is not valid TOML"),
])
def test_map_errors_name_the_file_the_entry_and_the_fix(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        hardware_map.load(path)
    assert needle in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_map_and_missing_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(hardware_map.ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match="--board needs a hardware map: pass --hardware-map FILE"):
        hardware_map.load(None)
    with pytest.raises(ConfigError, match=r"hardware map nope\.toml not found; draft one with"):
        hardware_map.load(Path("nope.toml"))
    monkeypatch.setenv(hardware_map.ENV_VAR, str(EXAMPLE))
    with pytest.raises(ConfigError, match=r"no board 'c3-right' in the hardware map .* \(it has: c3-left, devkitc"):
        hardware_map.load(None).board("c3-right")


def _lab(tmp_path: Path, tty: Path) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(f"""
[boards.c3]
device = "esp32c3"
usb_serial = "F4:12:FA:9C:21:08"
reset = "usb-jtag"

[boards.f405]
device = "stm32f405"
port = "{tty}"
probe = "066DFF"
flasher = "openocd"
""")
    return path


def test_run_board_finds_the_port_by_usb_serial_or_takes_the_fixed_one(tmp_path: Path) -> None:
    tty = tmp_path / "ttyACM7"
    tty.write_bytes(b"")
    lab = _lab(tmp_path, tty)
    info = ListPortInfo(str(tty), skip_link_detection=True)
    info.vid, info.pid, info.serial_number = 0x303A, 0x1001, "F4:12:FA:9C:21:08"
    attached = lambda: (discovery.serial_devices([info], status=lambda p: ("ok", None)), [])  # noqa: E731
    chosen = placement.place(None, bench="c3", hardware_map=lab, discover=attached)
    assert (chosen.board.name, chosen.port, chosen.emulate, chosen.how) == ("esp32c3", str(tty), False, "hardware map")
    assert chosen.adapter.options.reset_method == "usb-jtag"
    assert chosen.adapter.options.usb_serial == "F4:12:FA:9C:21:08"
    with pytest.raises(LinkError, match=r"bench board c3 \(USB serial F4:12:FA:9C:21:08\) is not attached; saw no"):
        placement.place(None, bench="c3", hardware_map=lab, discover=lambda: ([], []))
    with pytest.raises(ConfigError, match="--device esp32 contradicts board c3 \\(esp32c3\\)"):
        placement.place("esp32", bench="c3", hardware_map=lab)
    with pytest.raises(ConfigError, match="--emulate and --board exclude each other"):
        placement.place(None, bench="f405", hardware_map=lab, emulate=True)


def test_plan_run_with_board_and_no_flash_targets_the_mapped_port(tmp_path: Path) -> None:
    tty = tmp_path / "ttyACM7"
    tty.write_bytes(b"")
    session, _ = plan_run(RunOptions(device=None, board="f405", hardware_map=_lab(tmp_path, tty), model="demo",
                                     flash=False, out=tmp_path / "out"))
    target = session.target
    assert (target.board.name, target.port, target.emulate, target.flash) == ("stm32f405", str(tty), False, False)
    assert target.adapter.options.flasher == "openocd" and target.adapter.options.probe == "066DFF"
