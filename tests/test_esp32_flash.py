"""The ESP32 flash path end to end: our adapter drives the real esptool library against a stand-in ROM
bootloader on a pty (tests/fakes/esp_rom.py), plus esptool's image tools on a real ELF."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from platforms import FlashOptions, resolve_board, serial_ports
from platforms.esp32 import Esp32Adapter, partition_offset
from profiler.errors import FlashError, LinkError
from profiler.firmware import FIRMWARE_DIR, ensure_firmware
from tests.fakes.esp_rom import ESP32, EspRomStandIn, modem_lines

DEMO = Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm"
BOARD = resolve_board("esp32c3")


@pytest.fixture(scope="module")
def c3_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ESP32-C3 firmware ELF: the real bare-metal port once it is in the tree, else a minimal RV32IMC
    program built with the same Debian toolchain (an honest ELF for elf2image, not the profiler)."""
    if (FIRMWARE_DIR / "ports" / BOARD.firmware_port / "port.mk").is_file():
        return ensure_firmware(BOARD.firmware_port).elf
    build = tmp_path_factory.mktemp("c3")
    source = build / "app.c"
    source.write_text("volatile unsigned counter = 7;\nvoid _start(void) { for (;;) counter++; }\n")
    elf = build / "app.elf"
    subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32", "-nostdlib", "-Os", "-Wl,-N",
                    "-Wl,-Ttext=0x40380000", "-Wl,-Tdata=0x3FC88000", "-Wl,-e,_start", "-o", str(elf), str(source)],
                   check=True)
    return elf


@pytest.fixture
def rom() -> Iterator[EspRomStandIn]:
    standin = EspRomStandIn()
    with modem_lines():
        yield standin
    standin.close()


def test_flash_writes_firmware_and_model_at_their_offsets_then_skips_them(
    rom: EspRomStandIn, c3_elf: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    adapter = Esp32Adapter()
    firmware, model = adapter.images(BOARD, c3_elf, DEMO)
    assert (firmware.address, model.address) == (BOARD.firmware_addr, BOARD.model_addr)

    started = time.perf_counter()
    report = adapter.flash(BOARD, c3_elf, DEMO, rom.path)
    first_s = time.perf_counter() - started
    assert [r.written for r in report.regions] == [True, True]
    assert rom.flash[firmware.address : firmware.address + len(firmware.data)] == firmware.data
    assert rom.flash[model.address : model.address + len(model.data)] == model.data
    # Into the bootloader by DTR/RTS, then back into the firmware by an EN pulse with IO0 high.
    assert rom.boots == ["download", "app"]
    assert rom.commands["FLASH_DEFL_DATA"] > 0 and rom.commands["FLASH_DATA"] == 0  # compressed writes
    assert rom.baud == 460800
    first_written = rom.bytes_written
    assert first_written >= len(firmware.data) + len(model.data)

    rom.reset_stats()
    started = time.perf_counter()
    again = adapter.flash(BOARD, c3_elf, DEMO, rom.path)
    second_s = time.perf_counter() - started
    assert [r.written for r in again.regions] == [False, False] and again.bytes_written == 0
    assert rom.bytes_written == 0 and rom.commands["SPI_FLASH_MD5"] == 2
    assert rom.commands["FLASH_DEFL_BEGIN"] == 0 and rom.commands["FLASH_BEGIN"] == 0
    assert rom.boots == ["download", "app"]
    assert adapter.open_link(BOARD, rom.path) == rom.path

    changed = tmp_path / "changed.tpm"
    changed.write_bytes(DEMO.read_bytes()[:-1] + b"\x00")
    rom.reset_stats()
    third = adapter.flash(BOARD, c3_elf, changed, rom.path)
    assert [r.written for r in third.regions] == [False, True]
    assert rom.flash[model.address : model.address + len(model.data)] == changed.read_bytes()
    record_property("flash_s", {"first": round(first_s, 3), "second": round(second_s, 3)})
    record_property("bytes_written", {"first": first_written, "second": 0})
    print(f"stand-in flash: first {first_s:.2f} s ({first_written} B written), second {second_s:.2f} s (0 B)")


def test_another_chip_on_the_port_is_named(c3_elf: Path) -> None:
    standin = EspRomStandIn(chip=ESP32)
    try:
        with modem_lines(), pytest.raises(FlashError) as caught:
            Esp32Adapter().flash(BOARD, c3_elf, DEMO, standin.path)
    finally:
        standin.close()
    assert str(caught.value) == f"the board on {standin.path} is an ESP32, not an esp32c3; pass --device esp32"
    assert standin.commands["READ_REG"] >= 1  # detected by the magic value at 0x40001000
    assert standin.bytes_written == 0


def test_no_bootloader_answer_is_one_line_with_the_next_step(rom: EspRomStandIn, c3_elf: Path) -> None:
    adapter = Esp32Adapter(FlashOptions(reset_method="manual"))  # nobody pulls IO0 low: the firmware keeps running
    adapter.connect_attempts = 1
    with pytest.raises(FlashError) as caught:
        adapter.flash(BOARD, c3_elf, DEMO, rom.path)
    message = str(caught.value)
    assert message.startswith(f"esptool could not reach the esp32c3 bootloader on {rom.path}: ")
    assert "\n" not in message and "hold BOOT while pressing RESET" in message
    assert rom.boots == [] and rom.commands["SYNC"] == 0


def test_reset_pulses_en_with_io0_high(rom: EspRomStandIn) -> None:
    Esp32Adapter().reset(BOARD, rom.path)
    assert rom.boots == ["app"]
    assert (False, True) in rom.line_changes  # RTS asserted alone: EN low


def test_the_port_is_found_again_by_usb_serial_after_re_enumeration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OS edge (sysfs port listing) is faked: the board vanishes and returns as another ttyACM."""
    returned = ListPortInfo("/dev/ttyACM1", skip_link_detection=True)
    returned.vid, returned.pid, returned.serial_number = 0x303A, 0x1001, "F4:12:FA:9C:21:08"
    listings = iter([[], [], [returned]])
    monkeypatch.setattr(serial_ports, "list_serial_ports", lambda: next(listings, [returned]))
    adapter = Esp32Adapter(FlashOptions(usb_serial="F4:12:FA:9C:21:08"))
    assert adapter.open_link(BOARD, "/dev/ttyACM0") == "/dev/ttyACM1"
    monkeypatch.setattr(serial_ports, "list_serial_ports", lambda: [])
    with pytest.raises(LinkError, match=r"USB serial F4:12:FA:9C:21:08\) did not come back within 0 s"):
        serial_ports.wait_for_port("/dev/ttyACM0", "F4:12:FA:9C:21:08", timeout_s=0.2)


def test_elf2image_makes_a_valid_esp32c3_image_like_the_esptool_cli(c3_elf: Path, tmp_path: Path) -> None:
    from elftools.elf.elffile import ELFFile
    from esptool.bin_image import LoadFirmwareImage

    data = Esp32Adapter.elf2image(BOARD, c3_elf)
    image = LoadFirmwareImage("esp32c3", data)
    with c3_elf.open("rb") as handle:
        entry = ELFFile(handle).header["e_entry"]
    assert data[0] == 0xE9 and image.chip_id == 5 and image.entrypoint == entry
    assert image.segments and all(len(s.data) > 0 for s in image.segments)
    image.verify()  # checksum and appended SHA-256
    cli = tmp_path / "cli.bin"
    result = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32c3", "elf2image", "--flash-mode", "dio",
                             "--flash-size", "4MB", "-o", str(cli), str(c3_elf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(cli.read_bytes()).digest() == hashlib.sha256(data).digest()
    info = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(cli)], capture_output=True, text=True)
    assert info.returncode == 0 and "ESP32-C3" in info.stdout and f"0x{entry:08x}" in info.stdout.lower()


def test_partition_offset_reads_an_esp_idf_partition_table() -> None:
    def entry(kind: int, subtype: int, offset: int, size: int, label: bytes) -> bytes:
        return struct.pack("<HBBII16sI", 0x50AA, kind, subtype, offset, size, label, 0)

    table = (entry(1, 2, 0x9000, 0x6000, b"nvs") + entry(0, 0, 0x10000, 0x100000, b"factory")
             + entry(1, 0x40, 0x110000, 0x2F0000, b"model") + b"\xff" * 32)
    assert partition_offset(table, "model") == (0x110000, 0x2F0000)
    assert partition_offset(table, "missing") is None


def test_run_with_port_flashes_through_the_session_then_waits_for_hello(
    rom: EspRomStandIn, c3_elf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --device esp32c3 --port PTY`: the session's flash phase drives the adapter; the stand-in's
    "application" does not speak our protocol, so the run ends in a HELLO timeout recorded in the file.
    The probe before flashing asked more than once and said so before flashing."""
    from profiler.api import RunOptions, plan_run
    from profiler.errors import LinkTimeout
    from profiler.sinks.jsonl import read_jsonl

    if not (FIRMWARE_DIR / "ports" / BOARD.firmware_port / "port.mk").is_file():  # the stand-in ELF has no arena
        from profiler.firmware import FirmwareImage

        image = FirmwareImage(port="esp32c3", firmware_id="stand-in", elf=c3_elf, static_ram_bytes=0,
                              arena_total_bytes=256 * 1024, flash_used_bytes=c3_elf.stat().st_size, sections={})
        monkeypatch.setattr(Esp32Adapter, "firmware", lambda self, board: image)
    session, jsonl = plan_run(RunOptions(device="esp32c3", port=rom.path, model="demo", out=tmp_path,
                                            hello_timeout=1.0))
    assert session.target.adapter.options.flasher is None and not session.target.emulate
    notes: list[tuple[str, list[str]]] = []
    session.notify = lambda message: notes.append((message, list(rom.boots)))
    with pytest.raises(LinkTimeout):
        session.run()
    ((note, boots_then),) = notes
    assert "no profiler firmware answers" in note and "asked" in note and boots_then == []  # before any flashing
    model = DEMO.read_bytes()
    assert rom.flash[BOARD.model_addr : BOARD.model_addr + len(model)] == model
    assert rom.boots == ["download", "app"]
    records = read_jsonl(jsonl)
    flash = next(r for r in records if r["type"] == "phase" and r["name"] == "flash")
    assert flash["host_ms"] > 0
    assert records[-2]["type"] == "error" and records[-2]["kind"] == "timeout"
    assert records[-1]["status"] == "failed"
