"""Wire protocol: the host codec, the shared vectors, and the firmware codec on the same vectors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from profiler.errors import ProtocolError
from profiler.link import protocol as p

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "protocol.txt"
sys.path.insert(0, str(ROOT / "scripts"))
from make_protocol_vectors import render, vectors  # noqa: E402


def test_committed_vectors_are_current_and_decode() -> None:
    assert VECTORS.read_text() == render()
    decoder = p.FrameDecoder()
    stream = b"".join(p.encode_frame(t, s, pl) for t, s, pl in vectors())
    frames = decoder.feed(stream)
    assert [(f.type, f.seq, f.payload) for f in frames] == [(int(t), s, pl) for t, s, pl in vectors()]
    for line in VECTORS.read_text().splitlines()[1:]:
        msg_type, seq, payload, encoded = line.split(" ")
        (frame,) = p.FrameDecoder().feed(bytes.fromhex(encoded))
        assert frame == p.Frame(int(msg_type, 16), int(seq), b"" if payload == "-" else bytes.fromhex(payload))
        assert bytes.fromhex(encoded).count(0) == 1


def test_resync_counts_noise_corruption_and_gaps() -> None:
    hello = p.encode_frame(p.MsgType.HELLO, 0, bytes(60))
    tok = [
        p.encode_frame(p.MsgType.TOKEN, seq, p.token_payload(p.Token(0, seq, seq, 7, 100 * seq))) for seq in range(1, 6)
    ]
    damaged = bytearray(tok[1])
    damaged[5] ^= 0x40  # a flipped bit inside the frame: CRC must catch it
    stream = b"ROM boot v1.2\r\n\x00" + hello + tok[0] + bytes(damaged) + tok[2] + tok[4]  # tok[3] never arrives
    decoder = p.FrameDecoder()
    # Feed one byte at a time: a frame split across reads must survive.
    frames = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert [f.seq for f in frames] == [0, 1, 3, 5]
    assert decoder.bytes_skipped == len(b"ROM boot v1.2\r\n") + 1
    assert decoder.frames_corrupt == 1
    assert decoder.frames_lost == 2  # seq 2 (corrupt, so also missing) and seq 4
    event = p.parse_event(frames[1])
    assert event == p.Token(rep=0, index=1, pos=1, token_id=7, ticks=100)


def test_reboot_hello_restarts_sequence_without_counting_loss() -> None:
    decoder = p.FrameDecoder()
    first = p.encode_frame(p.MsgType.HELLO, 0, bytes(60)) + p.encode_frame(p.MsgType.LOG, 1, b"x")
    decoder.feed(first + b"\x00\x00" + p.encode_frame(p.MsgType.HELLO, 0, bytes(60)))
    assert (decoder.frames_lost, decoder.frames_corrupt) == (0, 0)


def test_firmware_codec_agrees_with_vectors(host_tools: Path) -> None:
    result = subprocess.run(
        [str(host_tools / "tp_protocol_test"), str(VECTORS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(vectors())} passed" in result.stdout or "passed, 0 failed" in result.stdout


def test_telemetry_frames_round_trip_through_the_codec() -> None:
    events = [
        p.CpuUsage(rep=1, phase=p.CpuPhase.DECODE, busy_ticks=2**33 + 1, wait_ticks=7),
        p.Temperature(rep=1, flags=p.TEMP_FLAG_CALIBRATED, ticks=99, milli_celsius=-40_125, source=p.TempSource.ONCHIP),
        p.PowerReading(rep=1, dropped=2, ticks=2**40, bus_mv=3300, current_ua=-5_000, power_uw=16_500, chip=2),
    ]
    builders = {p.CpuUsage: (p.MsgType.CPU, p.cpu_payload), p.Temperature: (p.MsgType.TEMP, p.temp_payload),
                p.PowerReading: (p.MsgType.POWER, p.power_payload)}
    for seq, event in enumerate(events):
        msg_type, build = builders[type(event)]
        (frame,) = p.FrameDecoder().feed(p.encode_frame(msg_type, seq, build(event)))  # type: ignore[operator]
        assert p.parse_event(frame) == event
    cpu = events[0]
    assert isinstance(cpu, p.CpuUsage) and cpu.utilization == (2**33 + 1) / (2**33 + 8)
    assert p.Temperature(0, 0, 0, 41_500, 1).celsius == 41.5


def test_run_payload_keeps_its_old_layout_and_appends_the_telemetry_fields() -> None:
    old = p.run_payload(2, 32, 0.0, 42, [1, 403])
    assert len(old) == 14 + 2 * 2
    ext = p.run_payload(2, 32, 0.0, 42, [1, 403], p.RUN_FLAG_POWER, 2500)
    assert ext[: len(old)] == old and ext[len(old) :] == bytes([1]) + (2500).to_bytes(2, "little")
    assert p.Capability.INA == 1 << 10 and p.Capability.INT4 == 1 << 3


def test_telemetry_frames_of_the_wrong_length_are_protocol_errors() -> None:
    for msg_type in (p.MsgType.CPU, p.MsgType.TEMP, p.MsgType.POWER):
        (frame,) = p.FrameDecoder().feed(p.encode_frame(msg_type, 0, bytes(3)))
        with pytest.raises(ProtocolError, match="expected"):
            p.parse_event(frame)
