"""Discovery against pyserial's port-info objects, the placement rules of `run`, and `devices` on the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from profiler import cli, discovery
from profiler.discovery import Device
from profiler.errors import ConfigError, LinkError
from profiler.lab import placement
from tests.cli import CLI


def port(device: str, vid: int | None = None, pid: int | None = None, serial: str | None = None,
         description: str = "n/a") -> ListPortInfo:
    """A ListPortInfo as pyserial's Linux backend fills it from sysfs."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number, info.description = vid, pid, serial, description
    return info


BENCH = [
    port("/dev/ttyS0"),  # the PC's own UART: not a board
    port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "CP2102 USB to UART Bridge Controller"),
    port("/dev/ttyACM0", 0x0483, 0x374B, "066DFF485153826687124832", "STM32 STLink"),
    port("/dev/ttyACM1", 0x303A, 0x1001, "F4:12:FA:9C:21:08", "USB JTAG/serial debug unit"),
    port("/dev/ttyUSB1", 0x1A86, 0x7523, None, "USB2.0-Serial"),
    port("/dev/ttyACM2", 0x2E8A, 0x000A, "E6614", "Pico"),  # a USB port we do not know
]


def _ok(path: str) -> tuple[str, str | None]:
    return "ok", None


def test_serial_ports_get_usb_identity_family_guess_and_status() -> None:
    devices = discovery.serial_devices(BENCH, status=_ok)
    assert [d.port for d in devices] == ["/dev/ttyUSB0", "/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyUSB1",
                                         "/dev/ttyACM2"]
    cp210x, stlink, jtag, ch340, unknown = devices
    assert (cp210x.kind, cp210x.role, cp210x.families) == ("Silicon Labs CP210x USB-UART", "uart", ("esp32",))
    assert (stlink.kind, stlink.role, stlink.families) == ("ST-LINK/V2-1", "probe+uart", ("stm32",))
    assert jtag.kind == "Espressif USB-Serial-JTAG" and jtag.serial_number == "F4:12:FA:9C:21:08"
    assert ch340.kind == "WCH CH340 USB-UART" and ch340.serial_number is None
    assert unknown.kind == "USB serial port" and unknown.families == ()
    assert cp210x.to_dict() == {
        "port": "/dev/ttyUSB0", "usb": "10c4:ea60", "serial_number": "0001",
        "description": "CP2102 USB to UART Bridge Controller", "kind": "Silicon Labs CP210x USB-UART",
        "role": "uart", "families": ["esp32"], "status": "ok", "fix": None,
    }
    assert discovery.candidates("esp32", devices) == [cp210x, jtag, ch340]
    assert discovery.candidates("stm32", devices) == [stlink]


def test_every_usb_id_the_issue_names_is_recognised() -> None:
    names = {
        (0x10C4, 0xEA60): "CP210x", (0x1A86, 0x7523): "CH340", (0x1A86, 0x55D4): "CH9102", (0x0403, 0x6001): "FTDI",
        (0x303A, 0x1001): "USB-Serial-JTAG", (0x0483, 0x374B): "ST-LINK", (0x0483, 0xDF11): "DFU",
        (0x1366, 0x0105): "J-Link", (0x1A86, 0x8010): "WCH-Link",
    }
    for (vid, pid), needle in names.items():
        kind = discovery.identify(vid, pid)
        assert kind is not None and needle in kind.name, (hex(vid), hex(pid))
    assert discovery.identify(0x1234, 0x5678) is None and discovery.identify(None, None) is None


def test_port_status_reports_permission_and_busy_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = tmp_path / "ttyUSB9"
    node.write_bytes(b"")
    assert discovery.port_status(str(node)) == ("ok", None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    status, fix = discovery.port_status(str(node))
    assert status == "permission-denied" and "sudo usermod -aG" in str(fix) and "log out and back in" in str(fix)
    monkeypatch.undo()
    holder = subprocess.Popen([sys.executable, "-c", f"f = open({str(node)!r}); import time; time.sleep(30)"])
    try:
        for _ in range(100):
            status, fix = discovery.port_status(str(node))
            if status == "busy":
                break
            import time

            time.sleep(0.05)
        assert status == "busy" and f"pid {holder.pid} (python" in str(fix)
    finally:
        holder.kill()
        holder.wait()


def test_usb_probes_merge_into_their_serial_port_and_stand_alone_otherwise() -> None:
    serial = discovery.serial_devices(BENCH[2:3], status=_ok)
    probe = Device(None, 0x0483, 0x374B, "066DFF485153826687124832", "STM32 STLink", "ST-LINK/V2-1", "probe+uart",
                   ("stm32",), "permission-denied", discovery.udev_fix(0x0483, 0x374B))
    dfu = Device(None, 0x0483, 0xDF11, "325B36703331", "STM32  BOOTLOADER", "STM32 ROM DFU bootloader", "dfu",
                 ("stm32",), "ok")
    merged = discovery.merge(serial, [probe, dfu])
    assert [d.port for d in merged] == ["/dev/ttyACM0", None]
    assert merged[0].status == "permission-denied" and 'ATTR{idProduct}=="374b"' in str(merged[0].fix)
    assert merged[1] is dfu


def test_usb_listing_without_a_libusb_backend_is_a_note_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import usb.core

    def no_backend(**kwargs: object) -> None:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(usb.core, "find", no_backend)
    devices, notes = discovery.usb_devices()
    assert devices == [] and len(notes) == 1 and "libusb-1.0-0" in notes[0]


def test_devices_json_on_a_machine_with_no_boards_prints_an_empty_list(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import usb.core

    def no_backend(**kwargs: object) -> None:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(discovery, "list_serial_ports", lambda: [port("/dev/ttyS0")])
    monkeypatch.setattr(usb.core, "find", no_backend)
    assert cli.main(["devices", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert err.startswith("note: pyusb found no libusb backend")


def test_devices_json_runs_here_as_a_real_process() -> None:
    result = subprocess.run([*CLI, "devices", "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_devices_write_map_drafts_a_hardware_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from profiler import hardware_map

    monkeypatch.setattr(discovery, "discover", lambda: (discovery.serial_devices(BENCH, status=_ok), []))
    target = tmp_path / "lab.toml"
    assert cli.main(["devices", "--write-map", str(target)]) == 0
    drafted = hardware_map.load(target)
    assert sorted(drafted.boards) == ["esp32-1", "esp32-2", "esp32-3", "stm32-1"]
    assert drafted.board("esp32-1").usb_serial == "0001" and drafted.board("esp32-1").device == "esp32"
    assert drafted.board("esp32-2").reset == "usb-jtag"
    assert drafted.board("esp32-3").port == "/dev/ttyUSB1" and drafted.board("esp32-3").usb_serial is None
    stm32 = drafted.board("stm32-1")
    assert (stm32.device, stm32.flasher, stm32.probe) == ("stm32f405", "pyocd", "066DFF485153826687124832")
    assert cli.main(["devices", "--write-map", str(target)]) == 3  # never overwrites
    assert "exists" in capsys.readouterr().err


# -- where `run` goes -----------------------------------------------------------


def _bench(*ports: ListPortInfo):  # type: ignore[no-untyped-def]
    return lambda: (discovery.serial_devices(ports, status=_ok), [])


def test_boards_qemu_can_run_default_to_emulation() -> None:
    chosen = placement.place("stm32", discover=_bench())
    assert chosen.emulate and chosen.board.name == "stm32f405" and chosen.how == "emulated"
    assert placement.place("riscv", discover=_bench()).emulate


def test_a_board_without_emulator_uses_the_single_matching_attached_board(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    tty = tmp_path / "ttyUSB0"
    tty.write_bytes(b"")
    chosen = placement.place("esp32c3", discover=_bench(port("/dev/ttyS0"), port(str(tty), 0x10C4, 0xEA60, "1")))
    assert (chosen.emulate, chosen.port, chosen.how) == (False, str(tty), "discovered")
    chosen = placement.place("stm32", emulate=False, discover=_bench(port(str(tty), 0x0483, 0x374B, "X")))
    assert (chosen.emulate, chosen.port) == (False, str(tty))


def test_no_or_several_matching_boards_stop_with_one_line_naming_what_was_looked_for() -> None:
    with pytest.raises(ConfigError) as caught:
        placement.place("esp32", discover=_bench(port("/dev/ttyACM0", 0x0483, 0x374B, "X")))
    message = str(caught.value)
    assert message.startswith("no esp32 board attached: looked for serial ports with USB IDs 0403:6001")
    assert "10c4:ea60" in message and "303a:1001" in message and "saw /dev/ttyACM0 (0483:374b)" in message
    assert "--port PORT" in message and "--emulate" in message and "\n" not in message
    with pytest.raises(ConfigError, match=r"2 ports could be the esp32c3: /dev/ttyUSB0 \(Silicon Labs CP210x "
                                          r"USB-UART\), /dev/ttyUSB1 \(WCH CH340 USB-UART\); choose one with --port"):
        placement.place("esp32c3", discover=_bench(BENCH[1], BENCH[4]))
    with pytest.raises(ConfigError, match=r"no stm32 board attached: .* or --emulate$"):
        placement.place("stm32", emulate=False, discover=_bench())


def test_explicit_choices_are_checked_before_anything_is_launched(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--emulate and --port exclude each other"):
        placement.place("stm32", port="/dev/ttyACM0", emulate=True)
    with pytest.raises(ConfigError, match=r"esp32 cannot be emulated: .*no esp32 machine.*idf_tools.py"):
        placement.place("esp32", emulate=True)
    with pytest.raises(LinkError, match="serial port /dev/ttyFAKE does not exist; check the cable"):
        placement.place("stm32", port="/dev/ttyFAKE")
    with pytest.raises(ConfigError, match="cannot be flashed with esptool; choose --flasher pyocd or openocd"):
        placement.place("stm32", port="socket://127.0.0.1:1", flasher="esptool")
    assert placement.place("stm32", port="rfc2217://lab:4000").port == "rfc2217://lab:4000"


def test_run_acceptance_lines_on_the_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    monkeypatch.setattr(discovery, "list_serial_ports", lambda: [port("/dev/ttyS0")])
    code = cli.main(["run", "--device", "esp32", "--model", "demo", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and err[0].startswith("error: no esp32 board attached: looked for")
    assert "--port" in err[0] and "--emulate" in err[0]
    assert not list(tmp_path.iterdir())


def test_a_missing_port_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "run", "--device", "stm32", "--port", "/dev/ttyFAKE", "--model", "demo",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 8
    assert result.stderr.strip() == ("error: serial port /dev/ttyFAKE does not exist; check the cable and "
                                     "`tiny-profiler devices`, or run on the emulated board with --emulate")
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
