"""STM32 and RISC-V flashing through real subprocesses of stand-in pyOCD / OpenOCD / st-flash programs
(tests/fakes/flash_tools.py): the exact argument lists, the skip-if-same rule, resets and error paths."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from platforms import FlashOptions, adapter_for, resolve_board
from platforms.flasher import flasher_class
from platforms.images import elf_flash_image
from profiler.errors import FlashError, ToolMissing
from tests.fakes import flash_tools

DEMO = Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm"


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in tools first on PATH; returns their state directory (calls.jsonl, flash.bin)."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    state.mkdir()
    flash_tools.install(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TOOL_STATE", str(state))
    monkeypatch.delenv("FAKE_TOOL_FAIL", raising=False)
    return state


def _calls(state: Path) -> list[list[str]]:
    path = state / "calls.jsonl"
    calls = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return calls


def _flash(state: Path) -> bytes:
    return (state / "flash.bin").read_bytes()


def _other_model(tmp_path: Path) -> Path:
    data = bytearray(DEMO.read_bytes())
    data[-1] ^= 0xFF
    path = tmp_path / "other.tpm"
    path.write_bytes(bytes(data))
    return path


def test_pyocd_argument_lists_and_smart_flash_skip(tools: Path, tmp_path: Path, firmware_image) -> None:  # type: ignore[no-untyped-def]
    board = resolve_board("stm32f405")
    adapter = adapter_for(board, FlashOptions(probe="066DFF485153826687124832"))
    elf = firmware_image.elf
    first = adapter.flash(board, elf, DEMO, "/dev/ttyACM0")
    target = ["-t", "stm32f405rgtx", "-u", "066DFF485153826687124832"]
    assert _calls(tools) == [
        ["pyocd", "flash", "-v", *target, "-O", "smart_flash=true", "--no-reset", str(elf)],
        ["pyocd", "flash", "-v", *target, "-O", "smart_flash=true", "--base-address", "0x08020000",
         "--format", "bin", str(DEMO)],
    ]
    assert [r.written for r in first.regions] == [True, True]
    image = elf_flash_image(elf, board.flash_base, board.flash_bytes)
    assert _flash(tools)[: len(image.data)] == image.data
    assert _flash(tools)[0x20000 : 0x20000 + DEMO.stat().st_size] == DEMO.read_bytes()
    again = adapter.flash(board, elf, DEMO, "/dev/ttyACM0")
    assert [r.written for r in again.regions] == [False, False] and again.bytes_written == 0
    _calls(tools)
    changed = adapter.flash(board, elf, _other_model(tmp_path), "/dev/ttyACM0")
    assert [r.written for r in changed.regions] == [False, True]
    adapter.reset(board, "/dev/ttyACM0")
    assert _calls(tools)[-1] == ["pyocd", "reset", *target]


def test_openocd_one_run_with_preverify_per_image(tools: Path, tmp_path: Path, firmware_image) -> None:  # type: ignore[no-untyped-def]
    board = resolve_board("stm32f405")
    adapter = adapter_for(board, FlashOptions(flasher="openocd", probe="0670FF3435"))
    elf = firmware_image.elf
    first = adapter.flash(board, elf, DEMO, "/dev/ttyACM0")
    assert _calls(tools) == [[
        "openocd", "-f", "interface/stlink.cfg", "-c", "adapter serial 0670FF3435", "-f", "target/stm32f4x.cfg",
        "-c", f"program {{{elf}}} preverify verify",
        "-c", f"program {{{DEMO}}} preverify verify reset exit 0x08020000",
    ]]
    assert [r.written for r in first.regions] == [True, True]
    assert [r.written for r in adapter.flash(board, elf, DEMO, "/dev/ttyACM0").regions] == [False, False]
    assert [r.written for r in adapter.flash(board, elf, _other_model(tmp_path), "x").regions] == [False, True]
    _calls(tools)
    adapter.reset(board, "/dev/ttyACM0")
    assert _calls(tools) == [["openocd", "-f", "interface/stlink.cfg", "-c", "adapter serial 0670FF3435",
                              "-f", "target/stm32f4x.cfg", "-c", "init", "-c", "reset run", "-c", "shutdown"]]


def test_st_flash_reads_back_and_writes_only_what_differs(tools: Path, tmp_path: Path, firmware_image) -> None:  # type: ignore[no-untyped-def]
    board = resolve_board("stm32f405")
    adapter = adapter_for(board, FlashOptions(flasher="st-flash"))
    image = elf_flash_image(firmware_image.elf, board.flash_base, board.flash_bytes)
    first = adapter.flash(board, firmware_image.elf, DEMO, "/dev/ttyACM0")
    calls = _calls(tools)
    assert [c[:2] for c in calls] == [["st-flash", "read"], ["st-flash", "write"], ["st-flash", "read"],
                                      ["st-flash", "write"], ["st-flash", "reset"]]
    assert calls[0][3:] == ["0x08000000", str(len(image.data))]
    assert calls[3][3:] == ["0x08020000"]
    assert [r.written for r in first.regions] == [True, True]
    again = adapter.flash(board, firmware_image.elf, DEMO, "/dev/ttyACM0")
    assert [c[1] for c in _calls(tools)] == ["read", "read", "reset"]
    assert again.bytes_written == 0


def test_gd32vf103_flashes_through_openocd_with_its_target_script(tools: Path, tmp_path: Path) -> None:
    board = resolve_board("gd32vf103")
    adapter = adapter_for(board)
    elf = tmp_path / "fw.elf"
    _tiny_riscv_elf(elf)
    model = tmp_path / "small.tpm"
    model.write_bytes(bytes(range(256)) * 16)
    report = adapter.flash(board, elf, model, "/dev/ttyUSB1")
    (call,) = _calls(tools)
    assert call[:5] == ["openocd", "-f", "interface/ftdi/minimodule.cfg", "-f", "target/gd32vf103.cfg"]
    assert call[-1] == f"program {{{model}}} preverify verify reset exit 0x08010000"
    assert [r.written for r in report.regions] == [True, True]


def _tiny_riscv_elf(path: Path) -> None:
    import subprocess

    source = path.with_suffix(".c")
    source.write_text("void _start(void) { for (;;) {} }\n")
    subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "-nostdlib", "-Os",
                    "-Wl,-N", "-Wl,-Ttext=0x08000000", "-Wl,-e,_start", "-o", str(path), str(source)], check=True)


def test_a_failing_tool_is_one_line_with_the_next_step(tools: Path, monkeypatch: pytest.MonkeyPatch,
                                                        firmware_image) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_TOOL_FAIL", "1")
    board = resolve_board("stm32f405")
    for flasher, needle in (("pyocd", "No connected debug probes"), ("openocd", "Error: open failed"),
                            ("st-flash", "Failed to parse flash type")):
        with pytest.raises(FlashError) as caught:
            adapter_for(board, FlashOptions(flasher=flasher)).flash(board, firmware_image.elf, DEMO, "x")
        message = str(caught.value)
        assert needle in message and "\n" not in message and caught.value.exit_code == 7
        assert "check" in message.split(";")[-1]


@pytest.mark.parametrize(("flasher", "hint"), [
    ("pyocd", "pip install 'tiny-llm-edge-profiler[lab]'"),
    ("openocd", "install the Debian package openocd"),
    ("st-flash", "install the Debian package stlink-tools"),
])
def test_a_missing_tool_names_where_it_comes_from(flasher: str, hint: str, monkeypatch: pytest.MonkeyPatch,
                                                  firmware_image) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent.parent / "nonexistent"))
    board = resolve_board("stm32f405")
    with pytest.raises(ToolMissing) as caught:
        adapter_for(board, FlashOptions(flasher=flasher)).flash(board, firmware_image.elf, DEMO, "x")
    assert str(caught.value) == f"{flasher} is not installed; {hint}" or hint in str(caught.value)
    assert caught.value.exit_code == 6


def test_each_flasher_says_whether_its_tool_is_here(tools: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What `doctor` prints per flasher comes from the flasher itself: the program found on PATH, else its fix."""
    adapter = adapter_for(resolve_board("stm32f405"))
    for name in ("pyocd", "openocd", "st-flash"):
        status = flasher_class(name).status()
        assert name in adapter.flashers and status.ok and status.detail == str(tmp_path / "bin" / name)
    monkeypatch.setenv("PATH", str(tmp_path / "nonexistent"))
    missing = {name: flasher_class(name).status() for name in ("pyocd", "openocd", "st-flash")}
    assert {n: (s.ok, s.detail) for n, s in missing.items()} == {n: (False, "not on PATH") for n in missing}
    assert missing["openocd"].fix == "install the Debian package openocd (sudo apt-get install openocd)"
