"""Board profiles and the adapter registry: every row is a board some adapter can handle, with sane facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from platforms import FlashOptions, adapter_for, registered_families, resolve_board
from platforms.base import FlashRegion, FlashReport
from platforms.boards import BOARDS, board_names, boards_of, families
from platforms.images import elf_flash_image
from profiler.errors import ConfigError, PlatformError

RESET_METHODS = {"probe", "dtr-rts", "usb-jtag", "manual", "none"}


@pytest.mark.parametrize("board", BOARDS, ids=lambda b: b.name)
def test_every_board_row_resolves_to_a_registered_platform_with_sane_facts(board) -> None:  # type: ignore[no-untyped-def]
    assert board.family in registered_families()
    adapter = adapter_for(board)
    assert adapter.family == board.family
    assert resolve_board(board.name) is board
    for alias in board.aliases:
        assert resolve_board(alias) is board
    assert board.core and board.firmware_port
    assert 1_000_000 <= board.clock_hz <= 1_000_000_000
    assert 16 * 1024 <= board.sram_bytes <= 64 * 1024 * 1024
    assert board.reset_method in RESET_METHODS
    # The model region lies in flash and stays clear of the firmware.
    assert board.flash_base <= board.model_addr
    assert board.model_addr + board.model_region_bytes <= board.flash_base + board.flash_bytes
    assert not board.model_addr <= board.firmware_addr < board.model_addr + board.model_region_bytes
    if board.flasher:  # a real board: its flasher is one its adapter drives; firmware first, then the model
        assert board.flasher in adapter.flashers
        assert adapter.flasher_for(board) == board.flasher
        assert board.flash_base <= board.firmware_addr < board.model_addr
    else:
        assert board.qemu_machine is not None, "a board without a flasher must at least be emulated"
        assert board.reset_method == "none"
    assert board.model_region_bytes >= 32 * 1024
    if board.usb_vid_pid is not None:
        vid, pid = board.usb_vid_pid
        assert 0 < vid <= 0xFFFF and 0 < pid <= 0xFFFF
    if board.family == "esp32":
        assert board.model_addr % 0x1000 == 0 and board.firmware_addr % 0x1000 == 0  # flash sectors
        assert board.model_partition
    if board.openocd_config:
        assert board.openocd_config[-1].startswith("target/")


def test_names_are_unique_and_families_pick_their_default_board() -> None:
    names = board_names()
    assert len(names) == len(set(names))
    assert names[0] == "stm32f405"  # error messages list the emulated default first
    for family in families():
        assert resolve_board(family) is boards_of(family)[0] or resolve_board(family).name == family
    assert resolve_board("stm32").name == "stm32f405"
    assert resolve_board("ESP32").name == "esp32"
    assert resolve_board("esp32c3").family == "esp32"
    assert resolve_board("gd32vf103").family == "riscv"
    assert resolve_board("riscv").qemu_machine == "virt"
    with pytest.raises(ConfigError, match="unknown device 'esp99'; known devices: stm32f405"):
        resolve_board("esp99")


def test_a_flasher_the_family_cannot_drive_is_refused_naming_the_ones_it_can() -> None:
    board = resolve_board("esp32c3")
    with pytest.raises(ConfigError, match="esp32c3 cannot be flashed with pyocd; choose --flasher esptool"):
        adapter_for(board, FlashOptions(flasher="pyocd")).flasher_for(board)
    stm32 = resolve_board("stm32f405")
    assert adapter_for(stm32, FlashOptions(flasher="dfu")).flasher_for(stm32) == "dfu"


def test_esp32_emulation_says_what_is_missing(tmp_path: Path) -> None:
    board = resolve_board("esp32")
    adapter = adapter_for(board)
    hint = adapter.no_emulator_hint(board)  # type: ignore[call-arg]
    assert "Espressif's QEMU fork" in hint and "--port" in hint
    with pytest.raises(PlatformError, match="esp32 has no emulator"):
        adapter.emulate(board, tmp_path / "x.elf", tmp_path / "m.tpm")


def test_elf_flash_image_takes_the_flash_segments_of_the_real_firmware(firmware_image) -> None:  # type: ignore[no-untyped-def]
    board = resolve_board("stm32f405")
    image = elf_flash_image(firmware_image.elf, board.flash_base, board.flash_bytes)
    assert image.address == board.firmware_addr
    assert board.firmware_addr + len(image.data) <= board.model_addr  # the model region stays free
    # Cortex-M vector table: initial SP in RAM, reset handler (Thumb) in this image.
    sp, reset = int.from_bytes(image.data[0:4], "little"), int.from_bytes(image.data[4:8], "little")
    assert 0x2000_0000 <= sp <= 0x2002_0000 and reset & 1
    assert image.address <= reset - 1 < image.address + len(image.data)
    assert len(image.data) >= firmware_image.flash_used_bytes  # .text + .rodata + .data initialisers


def test_flash_report_counts_written_bytes_and_names_skips() -> None:
    report = FlashReport("esptool", (FlashRegion("firmware", 0, 100, True), FlashRegion("model", 0x100000, 5, False)))
    assert report.bytes_written == 100 and report.skipped == ("model",)
    assert report.summary() == ("esptool: firmware 100 B at 0x00000000 written; "
                                "model 5 B at 0x00100000 already there, skipped")
