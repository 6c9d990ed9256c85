"""Write tests/vectors/protocol.txt, the frames both codecs must agree on.

Each line: TYPE_HEX SEQ_DEC PAYLOAD_HEX ENCODED_HEX, with `-` for an empty
payload and the encoded frame including its trailing 00 delimiter. The host
test checks the committed file against this script; the firmware's
tp_protocol_test checks its own encoder and decoder against the file.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from profiler.link import protocol as p

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "vectors" / "protocol.txt"


def vectors() -> list[tuple[int, int, bytes]]:
    """(type, seq, payload) triples covering every message and COBS edge."""
    hello = p.Hello(
        protocol_version=1, timer_bits=24, capabilities=7, clock_hz=168_000_000,
        timer_hz=168_000_000, ram_total_bytes=131072, flash_total_bytes=1048576,
        static_ram_bytes=2312, arena_total_bytes=120568, stack_total_bytes=8192,
        model_addr=0x08020000, model_region_bytes=917504, model_bytes=300000,
        model_crc32=0xDEADBEEF, model_status=0, firmware_id="stm32f4-0123456789ab",
        board="stm32f405",
    )
    fixed = dataclasses.replace(
        hello, capabilities=int(p.Capability.INT8 | p.Capability.SEEDED_SAMPLING | p.Capability.EVAL
                                | p.Capability.FIXED_POINT), clock_hz=125_000_000, timer_bits=64,
        timer_hz=10_000_000, firmware_id="riscv-virt-0123456789ab", board="riscv32-virt",
    )  # a board without an FPU: capability bit 5
    return [
        (p.MsgType.HELLO, 0, p.hello_payload(hello)),
        (p.MsgType.HELLO, 17, p.hello_payload(fixed)),
        (p.MsgType.TOKEN, 1, p.token_payload(p.Token(0, 0, 5, 300, 123456789))),
        (p.MsgType.TOKEN, 65535, p.token_payload(p.Token(7, 31, 36, 511, 2**40 + 17))),
        (p.MsgType.PHASE, 2, p.phase_payload(p.Phase(0, p.PhaseMark.PREFILL_START, 0))),
        (p.MsgType.MEM, 3, bytes(range(32))),
        (p.MsgType.DONE, 4, bytes([1, 0, 32, 0]) + (10**9).to_bytes(8, "little") + b"\x00"),
        (p.MsgType.ERROR, 5, p.error_payload(p.DeviceError(4, "context overflow"))),
        (p.MsgType.PONG, 6, p.ping_payload(0x01020304)),
        (p.MsgType.LOG, 7, b"boot ok\n"),
        (p.MsgType.PING, 0, p.ping_payload(0)),
        (p.MsgType.RUN, 1, p.run_payload(2, 32, 0.0, 42, [1, 403, 89, 12])),
        (p.MsgType.RUN, 2, p.run_payload(0, 8, 0.8, 0xFFFFFFFF, [1])),
        (p.MsgType.HELLO_REQ, 3, b""),
        (p.MsgType.LOG, 8, bytes(range(1, 256)) + bytes(range(1, 40))),  # crosses a 254-byte block
        (p.MsgType.LOG, 9, bytes(300)),  # all zeros
        (p.MsgType.LOG, 10, bytes((i * 7 + 1) % 256 for i in range(p.MAX_PAYLOAD))),
        # telemetry frames and the extended RUN
        (p.MsgType.CPU, 11, p.cpu_payload(p.CpuUsage(2, p.CpuPhase.PREFILL, 93_456_789, 0))),
        (p.MsgType.CPU, 12, p.cpu_payload(p.CpuUsage(2, p.CpuPhase.DECODE, 2**33 + 5, 1_234_567))),
        (p.MsgType.TEMP, 13, p.temp_payload(p.Temperature(2, p.TEMP_FLAG_CALIBRATED, 1000, 41_250, 1))),
        (p.MsgType.TEMP, 14, p.temp_payload(p.Temperature(3, 0, 2**40, -12_500, p.TempSource.ONCHIP))),
        (p.MsgType.POWER, 15, p.power_payload(p.PowerReading(2, 0, 1_680_000, 3300, 40_000, 132_000, 2))),
        (p.MsgType.POWER, 16, p.power_payload(p.PowerReading(2, 3, 2**32 + 9, 5000, -1_250, 6_250, p.InaChip.INA219))),
        (p.MsgType.RUN, 4, p.run_payload(3, 32, 0.0, 42, [1, 403, 89, 12], p.RUN_FLAG_POWER, 1000)),
        (p.MsgType.RUN, 5, p.run_payload(4, 8, 0.8, 7, [1], 0, 0)),
    ]


def render() -> str:
    """The file's text."""
    lines = ["# type seq payload encoded-frame-with-delimiter (see docs/protocol.md)"]
    for msg_type, seq, payload in vectors():
        encoded = p.encode_frame(msg_type, seq, payload)
        lines.append(f"{msg_type:02x} {seq} {payload.hex() or '-'} {encoded.hex()}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT.relative_to(ROOT)}\n")
