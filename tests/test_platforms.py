"""Board profiles and the adapter registry: every row is a board some adapter can handle, with sane facts."""

from __future__ import annotations

import shutil
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from platforms import FlashOptions, adapter_for, registered_families, resolve_board
from platforms.base import FlashRegion, FlashReport
from platforms.boards import BOARDS, board_names, boards_of, families
from platforms.cores import CORES
from platforms.esp_qemu import flash_image
from platforms.flasher import flasher_class
from platforms.images import FlashImage, elf_flash_image
from profiler.discovery import identify
from profiler.emulator import qemu_command
from profiler.errors import ConfigError, PlatformError
from profiler.firmware import FIRMWARE_DIR, port_toolchain

DEMO = Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm"

RESET_METHODS = {"probe", "dtr-rts", "usb-jtag", "manual", "none"}


@pytest.mark.parametrize("board", BOARDS, ids=lambda b: b.name)
def test_every_board_row_resolves_to_a_registered_platform_with_sane_facts(board) -> None:  # type: ignore[no-untyped-def]
    assert board.family in registered_families()
    adapter = adapter_for(board)
    assert adapter.family == board.family
    assert resolve_board(board.name) is board
    for alias in board.aliases:
        assert resolve_board(alias) is board
    assert board.core in CORES  # its MACs per cycle, FPU, DSP and Helium are stated, not assumed
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
        assert flasher_class(board.flasher).name == board.flasher  # registered by the adapter's module
        assert board.flash_base <= board.firmware_addr < board.model_addr
    else:
        assert board.qemu_machine is not None, "a board without a flasher must at least be emulated"
        assert board.reset_method == "none"
    assert board.model_region_bytes >= 32 * 1024
    for bridge in board.usb_bridges:
        assert 0 < bridge.vid <= 0xFFFF and (bridge.pid is None or 0 < bridge.pid <= 0xFFFF)
        assert bridge.role in {"uart", "probe", "probe+uart", "dfu"}
        kind = identify(bridge.vid, bridge.pid)  # discovery recognises what the row lists, as this family's
        assert kind is not None and board.family in kind.families
    assert bool(board.usb_bridges) == bool(board.flasher)  # a real board is reached through some USB device
    if board.flash_read_bytes_per_s is not None:
        assert 1e6 <= board.flash_read_bytes_per_s <= 1e10 and board.flash_read_note
    if board.family == "esp32":
        assert board.model_addr % 0x1000 == 0 and board.firmware_addr % 0x1000 == 0  # flash sectors
        assert board.model_partition
    if board.openocd_config:
        assert board.openocd_config[-1].startswith("target/")


@pytest.mark.parametrize("board", BOARDS, ids=lambda b: b.name)
def test_every_row_has_its_firmware_port_or_says_why_not(board) -> None:  # type: ignore[no-untyped-def]
    """A row names a directory of firmware/ports, whose port.mk names its toolchain (or an ESP-IDF project),
    or it has None and a reason that says what to run instead; building its firmware then says that reason."""
    adapter = adapter_for(board)
    if board.firmware_port is None:
        assert board.no_port_reason and "--device" in board.no_port_reason
        assert board.qemu_machine is None and board.flasher  # a real board only: nothing else could run it
        with pytest.raises(PlatformError, match=f"{board.name} has no firmware port yet: no "):
            adapter.firmware(board)
        return
    assert not board.no_port_reason
    port = FIRMWARE_DIR / "ports" / board.firmware_port
    assert port.is_dir(), f"{board.name} names firmware port {board.firmware_port}, which does not exist"
    if (port / "port.mk").is_file():
        toolchain = port_toolchain(board.firmware_port)
        assert toolchain.compiler.endswith("-gcc") and toolchain.debian_package == f"gcc-{toolchain.compiler[:-4]}"
        expected = {"rv32imc": "riscv64-", "rv32imac": "riscv64-"}.get(board.core, "arm-none-eabi-")
        assert toolchain.compiler.startswith(expected)  # the C3's RISC-V compiler is its port's, not its family's
    else:
        assert (port / "CMakeLists.txt").is_file()  # an ESP-IDF project, built with idf.py


def test_every_family_is_found_through_the_entry_point_group() -> None:
    """The registry is filled only from the `tiny_profiler.platforms` entry points (pyproject.toml): each names
    the module whose @register adds that family, and every family of the board table has one."""
    entries = {entry.name: entry.value for entry in entry_points(group="tiny_profiler.platforms")}
    assert set(entries) == set(families()) == set(registered_families())
    for family, module in entries.items():
        assert adapter_for(boards_of(family)[0]).__module__ == module


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


def test_esp32_emulation_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board = resolve_board("esp32c3")
    adapter = adapter_for(board)
    debian = shutil.which("qemu-system-riscv32")
    assert debian is not None  # make setup installs qemu-system-misc
    # Debian's qemu-system-riscv32 is on PATH, for real, and has no esp32c3 machine: that is what the line says.
    assert not adapter.can_emulate(board)
    hint = adapter.no_emulator_hint(board)
    assert debian in hint and "no esp32c3 machine" in hint and "idf_tools.py" in hint and "--port" in hint
    with pytest.raises(PlatformError, match=r"esp32c3 cannot be emulated: .*Espressif's fork"):
        adapter.emulate(board, tmp_path / "x.elf", tmp_path / "m.tpm")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "is not on PATH" in adapter_for(resolve_board("esp32")).no_emulator_hint(resolve_board("esp32"))


def test_esp32c3_on_the_fork_boots_a_whole_flash_image_of_what_flashing_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork itself is not installable here; a stand-in answers only `-M help` the way QEMU prints it, so
    detection (every qemu-system-riscv32 on PATH asked, Debian's first) and the launch spec are checked."""
    fork = tmp_path / "fork"
    fork.mkdir()
    stand_in = fork / "qemu-system-riscv32"
    machine_list = "Supported machines are:\\nesp32c3              Espressif ESP32-C3 machine\\n"
    stand_in.write_text(f"#!/bin/sh\nprintf '{machine_list}'\n")
    stand_in.chmod(0o755)
    debian_dir = str(Path(shutil.which("qemu-system-riscv32") or "/usr/bin/qemu-system-riscv32").parent)
    monkeypatch.setenv("PATH", f"{debian_dir}:{fork}")
    monkeypatch.setenv("TINY_PROFILER_CACHE", str(tmp_path / "cache"))
    board = resolve_board("esp32c3")
    adapter = adapter_for(board)
    assert adapter.can_emulate(board)
    firmware = tmp_path / "firmware.elf"
    firmware.with_suffix(".bin").write_bytes(b"\xe9" + bytes(range(1, 200)))  # the prebuilt elf2image output
    qemu = adapter.emulate(board, firmware, DEMO)
    spec = qemu.spec
    assert spec.binary == str(stand_in) and spec.machine == "esp32c3" and spec.kernel is None
    assert spec.icount_shift is not None  # RISC-V: instruction-counted, deterministic like the other boards
    assert spec.flash_drive is not None
    flash = spec.flash_drive.read_bytes()
    model = DEMO.read_bytes()
    assert len(flash) == board.flash_bytes
    assert flash[:200] == b"\xe9" + bytes(range(1, 200))
    assert flash[200:board.model_addr] == b"\xff" * (board.model_addr - 200)
    assert flash[board.model_addr:board.model_addr + len(model)] == model
    assert set(flash[board.model_addr + len(model):]) == {0xFF}
    command = qemu_command(spec, spec.binary, 4321)
    assert command[:3] == [str(stand_in), "-M", "esp32c3"] and "-kernel" not in command
    assert f"file={spec.flash_drive},if=mtd,format=raw" in command
    assert command[command.index("-icount") + 1].startswith(f"shift={spec.icount_shift},")
    with pytest.raises(PlatformError, match="past the board's 4096 KB"):
        flash_image([FlashImage("model", board.model_addr, b"x" * board.flash_bytes)], board.flash_bytes)


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
