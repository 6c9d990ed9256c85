#!/usr/bin/env python3
"""Stand-ins for the pyOCD, OpenOCD and st-flash command lines, with a board's flash behind them.

What they stand for: the three programs driving a debug probe wired to an
STM32F405 (1 MB of flash at 0x08000000). They are installed under their real
names in a directory put first on PATH (`install(dir)`), take the same
arguments as the real tools, print the lines the real tools print for the
outcomes we read (pyOCD's `Erased ..., programmed N bytes (...), identical
M bytes ...` summary, OpenOCD's `**Verified OK - No flashing**` and
`** Programming Started **` from its `program` script, st-flash's
read/write/reset chatter) and exit as they do. Each call appends its argv
to `calls.jsonl` in $FAKE_TOOL_STATE, and the flash contents live in
`flash.bin` there. $FAKE_TOOL_FAIL makes the next call fail the way a
missing probe does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FLASH_BASE = 0x0800_0000
FLASH_SIZE = 1024 * 1024
TOOLS = ("pyocd", "openocd", "st-flash")


def install(directory: Path) -> None:
    """Put the three tools into `directory` (to be prepended to PATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in TOOLS:
        script = directory / name
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                          f"import flash_tools\nsys.exit(flash_tools.main({name!r}))\n")
        script.chmod(0o755)


def _state() -> Path:
    return Path(os.environ["FAKE_TOOL_STATE"])


def _flash() -> bytearray:
    path = _state() / "flash.bin"
    return bytearray(path.read_bytes()) if path.is_file() else bytearray(b"\xff" * FLASH_SIZE)


def _save(flash: bytearray) -> None:
    (_state() / "flash.bin").write_bytes(bytes(flash))


def _elf_segments(path: str) -> list[tuple[int, bytes]]:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as handle:
        return [(int(s["p_paddr"]), s.data()[: s["p_filesz"]]) for s in ELFFile(handle).iter_segments()
                if s["p_type"] == "PT_LOAD" and s["p_filesz"] and FLASH_BASE <= s["p_paddr"] < FLASH_BASE + FLASH_SIZE]


def _program(pieces: list[tuple[int, bytes]]) -> tuple[int, int]:
    """Write pieces whose bytes differ; returns (programmed, identical) byte counts."""
    flash = _flash()
    programmed = identical = 0
    for address, data in pieces:
        offset = address - FLASH_BASE
        if flash[offset : offset + len(data)] == data:
            identical += len(data)
        else:
            flash[offset : offset + len(data)] = data
            programmed += len(data)
    _save(flash)
    return programmed, identical


def _same(pieces: list[tuple[int, bytes]]) -> bool:
    flash = _flash()
    return all(flash[a - FLASH_BASE : a - FLASH_BASE + len(d)] == d for a, d in pieces)


def pyocd(args: list[str]) -> int:
    if os.environ.get("FAKE_TOOL_FAIL"):
        print("0000615 C No connected debug probes. [__main__]", file=sys.stderr)
        return 1
    command = args[0]
    if command == "reset":
        print("0000412 I Performing 'hw' reset... [reset_cmd]", file=sys.stderr)
        return 0
    path = args[-1]
    if "--base-address" in args:
        pieces = [(int(args[args.index("--base-address") + 1], 16), Path(path).read_bytes())]
    else:
        pieces = _elf_segments(path)
    programmed, identical = _program(pieces)
    print(f"0001204 I Erased {programmed} bytes ({-(-programmed // 16384)} sectors), programmed {programmed} bytes "
          f"({-(-programmed // 1024)} pages), identical {identical} bytes ({identical // 1024} pages) at "
          "12.00 kB/s [loader]", file=sys.stderr)
    return 0


def openocd(args: list[str]) -> int:
    commands = [args[i + 1] for i, a in enumerate(args) if a == "-c"]
    print("Open On-Chip Debugger 0.12.0", file=sys.stderr)
    if os.environ.get("FAKE_TOOL_FAIL"):
        print("Error: open failed\n** OpenOCD init failed **\nshutdown command invoked", file=sys.stderr)
        return 1
    for command in commands:
        words = command.replace("{", "").replace("}", "").split()
        if words[0] != "program":
            continue
        path = words[1]
        address = next((int(w, 16) for w in words[2:] if w.startswith("0x")), None)
        pieces = [(address, Path(path).read_bytes())] if address is not None else _elf_segments(path)
        if "preverify" in words:
            print("**pre-verifying**", file=sys.stderr)
            if _same(pieces):
                print("**Verified OK - No flashing**", file=sys.stderr)
                continue
        print("** Programming Started **", file=sys.stderr)
        _program(pieces)
        print("** Programming Finished **", file=sys.stderr)
        if "verify" in words:
            print("** Verify Started **\n** Verified OK **", file=sys.stderr)
        if "reset" in words:
            print("** Resetting Target **", file=sys.stderr)
    print("shutdown command invoked", file=sys.stderr)
    return 0


def st_flash(args: list[str]) -> int:
    if "--serial" in args:
        index = args.index("--serial")
        args = args[:index] + args[index + 2 :]
    print("st-flash 1.7.0", file=sys.stderr)
    if os.environ.get("FAKE_TOOL_FAIL"):
        print("Failed to connect to target\nFailed to parse flash type or unrecognized flash type", file=sys.stderr)
        return 255
    command = args[0]
    if command == "read":
        path, address, size = args[1], int(args[2], 16), int(args[3])
        Path(path).write_bytes(bytes(_flash()[address - FLASH_BASE : address - FLASH_BASE + size]))
        print(f"INFO common.c: read from address {address:#010x} size {size}", file=sys.stderr)
    elif command == "write":
        path, address = args[1], int(args[2], 16)
        _program([(address, Path(path).read_bytes())])
        print("INFO common.c: Flash written and verified! jolly good!", file=sys.stderr)
    elif command == "reset":
        print("INFO common.c: NRST is not connected", file=sys.stderr)
    return 0


def main(name: str) -> int:
    """Run as the tool `name` with this process's arguments."""
    with (_state() / "calls.jsonl").open("a") as log:
        log.write(json.dumps([name, *sys.argv[1:]]) + "\n")
    return {"pyocd": pyocd, "openocd": openocd, "st-flash": st_flash}[name](sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[0]).name))
