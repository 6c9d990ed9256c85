"""The STM32 ROM DFU path against a stand-in bootloader at the pyusb edge (tests/fakes/dfuse_device.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from platforms import FlashOptions, adapter_for, resolve_board
from platforms import dfu as dfu_module
from platforms.dfu import DfuSe, Segment, parse_layout
from platforms.images import FlashImage, elf_flash_image
from profiler.errors import FlashError
from tests.fakes.dfuse_device import LAYOUT, FakeDfuSeDevice

DEMO = Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm"


def test_dfuse_memory_layout_parses_sector_runs_and_permissions() -> None:
    layout = parse_layout(LAYOUT)
    assert layout == [
        Segment(0x08000000, 16 * 1024, 4, True, True, True),
        Segment(0x08010000, 64 * 1024, 1, True, True, True),
        Segment(0x08020000, 128 * 1024, 7, True, True, True),
    ]
    assert parse_layout("@Option Bytes  /0x1FFFC000/01*016 e")[0] == Segment(0x1FFFC000, 16, 1, True, False, True)
    with pytest.raises(FlashError, match="not in DfuSe form"):
        parse_layout("Internal Flash")


def test_open_reads_transfer_size_and_layout_and_erases_only_touched_sectors() -> None:
    device = FakeDfuSeDevice()
    dfu = DfuSe(device).open()
    assert dfu.transfer_size == 2048 and device.alternate == 0
    assert dfu.sectors(0x08000000, 11528) == [0x08000000]
    assert dfu.sectors(0x0800C000, 0x5000) == [0x0800C000, 0x08010000]
    assert dfu.sectors(0x08020000, 303815) == [0x08020000, 0x08040000, 0x08060000]


def test_flash_writes_firmware_and_model_then_skips_them_and_starts_the_application(firmware_image) -> None:  # type: ignore[no-untyped-def]
    board = resolve_board("stm32f405")
    device = FakeDfuSeDevice()
    firmware = elf_flash_image(firmware_image.elf, board.flash_base, board.flash_bytes)
    images = [firmware, FlashImage("model", board.model_addr, DEMO.read_bytes())]
    dfu = DfuSe(device).open()
    regions = dfu_module.flash_images(dfu, images, board.firmware_addr)
    assert [r.written for r in regions] == [True, True]
    assert device.flash[: len(firmware.data)] == firmware.data
    assert device.flash[0x20000 : 0x20000 + DEMO.stat().st_size] == DEMO.read_bytes()
    # Exactly the sectors the two images touch (sectors() is checked against fixed numbers above).
    touched = dfu.sectors(firmware.address, len(firmware.data)) + dfu.sectors(board.model_addr, DEMO.stat().st_size)
    assert device.erased == touched and touched[0] == 0x08000000 and 0x08020000 in touched
    assert device.started_at == 0x08000000
    written, requests = device.bytes_written, device.requests["DNLOAD"]
    device.erased.clear()
    again = dfu_module.flash_images(DfuSe(device).open(), images, board.firmware_addr)
    assert [r.written for r in again] == [False, False]
    assert device.erased == [] and device.bytes_written == written  # read back, nothing erased or written
    # Two set-address commands for the read-backs, then leave: set-address and the empty download.
    assert device.requests["DNLOAD"] - requests == 4
    assert device.requests["UPLOAD"] > 0


def test_the_adapter_uses_dfu_when_asked(monkeypatch: pytest.MonkeyPatch, firmware_image) -> None:  # type: ignore[no-untyped-def]
    device = FakeDfuSeDevice()
    monkeypatch.setattr(dfu_module, "find_device", lambda serial=None: device)
    board = resolve_board("stm32f405")
    report = adapter_for(board, FlashOptions(flasher="dfu")).flash(board, firmware_image.elf, DEMO, "/dev/ttyUSB0")
    assert report.flasher == "dfu" and report.skipped == ()
    assert report.bytes_written == sum(r.size for r in report.regions)
    assert device.started_at == board.firmware_addr


def test_read_protection_and_bad_addresses_are_one_line_errors() -> None:
    dfu = DfuSe(FakeDfuSeDevice(read_protected=True)).open()
    with pytest.raises(FlashError, match=r"errVENDOR \(read protection active\?\)") as caught:
        dfu.read(0x08000000, 16)
    assert "\n" not in str(caught.value)
    dfu = DfuSe(FakeDfuSeDevice()).open()
    with pytest.raises(FlashError, match="outside the DFU memory layout"):
        dfu.write(0x08100000, b"\x00" * 16)


def test_no_dfu_device_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import usb.core

    monkeypatch.setattr(usb.core, "find", lambda **kwargs: iter(()))
    with pytest.raises(FlashError, match="hold BOOT0 high"):
        dfu_module.find_device()
