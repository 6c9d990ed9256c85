"""Write the firmware fuzzers' seed corpus (firmware/fuzz/corpus/<target>/).

Seeds are small valid inputs the fuzzers mutate from: tiny model images for
`fuzz_model` (one of them is also the flash of the board `fuzz_host_frames`
talks to) and host command streams for `fuzz_host_frames`, built with the
profiler's own encoder. The output is deterministic; re-run it after a change
to the model format or the protocol:

    .venv/bin/python scripts/make_fuzz_seeds.py
"""

from __future__ import annotations

import struct
from pathlib import Path

from profiler.link.protocol import (
    RUN_FLAG_POWER,
    MsgType,
    encode_frame,
    eval_payload,
    ping_payload,
    run_payload,
)
from profiler.models.convert import quantize_weights
from profiler.models.format import ModelConfig
from profiler.models.random_model import random_float_weights

CORPUS = Path(__file__).resolve().parent.parent / "firmware" / "fuzz" / "corpus"

# fuzz_host_frames' first byte: even = the rest as raw bytes, odd = records
RAW, RECORDS = b"\x00", b"\x01"
ESP32_BANNER = b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13\r\n"


def models() -> dict[str, bytes]:
    """Shapes that reach the parser's branches: GQA, two layers, int4 with odd rows,
    an own classifier, a group size that does not divide the rows."""
    shapes = {
        # the frame fuzzer's board runs this one: every RUN and EVAL stays cheap
        "tiny-int8": (ModelConfig(8, 16, 2, 2, 1, 32, 16, group_size=8), "int8"),
        "tiny-int4-odd": (ModelConfig(8, 15, 1, 2, 2, 20, 8, group_size=4,
                                      shared_classifier=False), "int4"),
        "tiny-int8-cls-g5": (ModelConfig(12, 20, 1, 3, 1, 17, 6, group_size=5,
                                         shared_classifier=False), "int8"),
    }
    return {name: quantize_weights(random_float_weights(cfg, seed=7), cfg.group_size,
                                   cfg.seq_len, quant=quant).to_bytes()
            for name, (cfg, quant) in shapes.items()}


def record(msg_type: int, payload: bytes = b"") -> bytes:
    """One record of the frame fuzzer's odd mode: u8 type, u16 len, payload."""
    return struct.pack("<BH", msg_type, len(payload)) + payload


def host_streams() -> dict[str, bytes]:
    """What a host sends, clean and damaged; RUN and EVAL fit the tiny-int8 board."""
    hello = encode_frame(MsgType.HELLO_REQ, 0)
    ping = encode_frame(MsgType.PING, 1, ping_payload(0xDEADBEEF))
    run = encode_frame(MsgType.RUN, 2, run_payload(0, 4, 0.0, 1, [1, 2, 3]))
    run_sampled = encode_frame(MsgType.RUN, 3, run_payload(1, 3, 0.8, 42, [5]))
    run_power = encode_frame(MsgType.RUN, 4, run_payload(2, 2, 0.0, 1, [1], RUN_FLAG_POWER, 200))
    evaluate = encode_frame(MsgType.EVAL, 5, eval_payload(0, [1, 2, 3, 4]))
    bad_crc = bytearray(run)
    bad_crc[3] ^= 0x40
    return {
        "session": RAW + b"\x00" + hello + ping + run + run_sampled + evaluate,
        "boot-banner": RAW + ESP32_BANNER + b"\x00" + hello,
        "power": RAW + b"\x00" + run_power,
        "damaged": RAW + bytes(bad_crc) + encode_frame(0x7F, 6) + b"\x00" * 3 + hello,
        "overflow": RAW + b"\x55" * 2100 + b"\x00" + ping,
        "records": RECORDS + record(MsgType.HELLO_REQ) + record(MsgType.PING, ping_payload(7))
        + record(MsgType.RUN, run_payload(0, 2, 0.0, 9, [4, 4]))
        + record(MsgType.EVAL, eval_payload(1, [3, 1]))
        + record(0x85, struct.pack("<H", 7)),  # STATUS_REQ (u16 nonce), once the firmware has it
        "records-bad": RECORDS + record(MsgType.RUN, run_payload(0, 40, -1.0, 9, [99]))
        + record(MsgType.RUN, b"\x01" * 15) + record(MsgType.EVAL, eval_payload(0, [0] * 17))
        + record(MsgType.PING, b"\x01") + record(MsgType.HELLO_REQ, b"\x01"),
        # found by fuzz_host_frames: logits / 1e-40 overflow, and softmax took inf - inf
        "regress-tiny-temperature": RECORDS
        + record(MsgType.RUN, run_payload(0, 2, 1e-40, 9, [4, 4])),
    }


def main() -> None:
    targets = {"fuzz_model": {f"{k}.tpm": v for k, v in models().items()},
               "fuzz_host_frames": {f"{k}.bin": v for k, v in host_streams().items()}}
    for target, seeds in targets.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
            print(f"{target}/{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
