"""Wire protocol: the host codec, the shared vectors, and the firmware codec on the same vectors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from profiler import protocol as p

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
