"""Property tests (Hypothesis) of the host's two parsers of untrusted bytes.

The frame decoder (profiler/link/protocol.py) reads whatever a wire delivers: for
any bytes, in any chunking, it returns frames or counts garbage, never raises,
and holds a bounded buffer. The model reader (profiler/models/format.py) reads
whatever file a user names: for any bytes it returns a model or raises
ModelError (the one-line user error), never IndexError, struct.error,
ValueError and the like, and never allocates far beyond the file's size.

TP_HYPOTHESIS_EXAMPLES sets the examples per property (default 300).
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from profiler.errors import ModelError, ProtocolError
from profiler.link.protocol import MAX_PAYLOAD, Frame, FrameDecoder, MsgType, encode_frame, parse_event
from profiler.models.convert import quantize_weights
from profiler.models.format import HEADER_SIZE, ModelConfig, TpmModel
from profiler.models.random_model import make_random_model, random_float_weights

EXAMPLES = int(os.environ.get("TP_HYPOTHESIS_EXAMPLES", "300"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BUFFER_BOUND = 4 * MAX_PAYLOAD  # FrameDecoder drops a delimiter-less run longer than this


def feed_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[Frame]:
    """Feed `data` split at `cuts`; check the buffer bound after every read."""
    frames: list[Frame] = []
    start = 0
    for end in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        frames += decoder.feed(data[start:end])
        start = end
        assert len(decoder._buffer) <= BUFFER_BOUND
    return frames


# ---------------------------------------------------------------------------
# Frame decoder

@PROPERTY
@given(data=st.binary(max_size=12_000), cuts=st.lists(st.integers(0, 12_000), max_size=20))
def test_decoder_takes_any_bytes(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    frames = feed_in_chunks(decoder, data, cuts)
    delimiters = data.count(0)
    assert len(frames) <= delimiters
    for frame in frames:
        assert len(frame.payload) <= MAX_PAYLOAD
        try:
            parse_event(frame)  # a frame that decodes still has an untrusted payload
        except ProtocolError:
            pass
    # what was not a frame is counted: skipped bytes before the first frame, corrupt chunks after
    assert decoder.bytes_skipped <= len(data)
    if not frames:
        assert decoder.frames_corrupt == 0
    assert decoder.frames_corrupt <= delimiters + len(data) // BUFFER_BOUND + 1
    assert decoder.frames_lost >= 0


@PROPERTY
@given(msg_type=st.integers(0, 255), payload=st.binary(max_size=MAX_PAYLOAD))
def test_any_frame_payload_parses_or_is_a_protocol_error(msg_type: int, payload: bytes) -> None:
    try:
        parse_event(Frame(msg_type, 0, payload))
    except ProtocolError:
        pass


_frames = st.lists(st.tuples(st.sampled_from([t for t in MsgType if t != MsgType.HELLO]),
                             st.integers(0, 0xFFFF),
                             st.binary(max_size=300) | st.binary(min_size=MAX_PAYLOAD, max_size=MAX_PAYLOAD)),
                   min_size=1, max_size=8)
# noise between frames, never a run long enough to be dropped unread
_noise = st.binary(max_size=600)


@PROPERTY
@given(frames=_frames, noise=st.lists(_noise, min_size=9, max_size=9),
       cuts=st.lists(st.integers(0, 20_000), max_size=30))
def test_frames_survive_noise_in_any_chunking(frames: list[tuple[int, int, bytes]], noise: list[bytes],
                                              cuts: list[int]) -> None:
    """Valid frames amid garbage come out whole, in order, with the garbage counted."""
    stream = bytearray()
    for i, (msg_type, seq, payload) in enumerate(frames):
        # the board's framing: noise, a delimiter that ends it, the frame
        stream += noise[i] + b"\x00" + encode_frame(msg_type, seq, payload)
    stream += noise[len(frames)]

    decoder = FrameDecoder()
    got = feed_in_chunks(decoder, bytes(stream), cuts)

    assert [(f.type, f.seq, f.payload) for f in got] == [(int(t), s, p) for t, s, p in frames]
    # before the first frame, each non-empty piece of noise and its delimiter are skipped bytes
    assert decoder.bytes_skipped == sum(len(piece) + 1 for piece in noise[0].split(b"\x00") if piece)
    # after the first frame every non-empty piece of noise ended by a delimiter is one corrupt frame
    corrupt = sum(1 for chunk in noise[1:len(frames)] for piece in chunk.split(b"\x00") if piece)
    tail = noise[len(frames)].split(b"\x00")[:-1]  # the last piece is still waiting for its delimiter
    corrupt += sum(1 for piece in tail if piece)
    assert decoder.frames_corrupt == corrupt
    # a gap ahead is lost frames; one behind (by 32768 or more) is a board that restarted, never lost frames
    gaps = [(seq - (prev + 1)) & 0xFFFF for (_, prev, _), (_, seq, _) in itertools.pairwise(frames)]
    assert decoder.frames_lost == sum(gap for gap in gaps if gap < 0x8000)
    assert decoder.sequence_restarts == sum(1 for gap in gaps if gap >= 0x8000)


# ---------------------------------------------------------------------------
# Model reader

@pytest.fixture(scope="module")
def tiny_images() -> list[bytes]:
    """Valid images: int8 with a shared classifier, int4 with its own and odd rows."""
    int8 = make_random_model(ModelConfig(8, 16, 2, 2, 1, 32, 16, group_size=8), seed=3)
    int4 = ModelConfig(8, 15, 1, 2, 2, 20, 8, group_size=4, shared_classifier=False, quant="int4")
    return [int8.to_bytes(),
            quantize_weights(random_float_weights(int4, 5), 4, 8, quant="int4").to_bytes()]


def with_crcs(image: bytearray) -> bytes:
    """Patch the payload size and CRCs so a mutation reaches the checks behind them."""
    if len(image) >= HEADER_SIZE:
        struct.pack_into("<II", image, 44, len(image) - HEADER_SIZE, zlib.crc32(image[HEADER_SIZE:]))
        struct.pack_into("<I", image, 60, zlib.crc32(image[:60]))
    return bytes(image)


def read_only_model_errors(data: bytes) -> None:
    """Read `data` as a model: a TpmModel or ModelError, within memory bounded by its size."""
    tracemalloc.start()
    try:
        TpmModel.from_bytes(data, "fuzzed.tpm")
        event("read a model")
    except ModelError as exc:
        assert "\n" not in str(exc)
        # which check refused it, for --hypothesis-show-statistics
        event("refused: " + re.sub(r"\d+", "N", " ".join(str(exc).split()[1:5])))
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= 20 * len(data) + (1 << 20), f"reading {len(data)} bytes took {peak} bytes"


@PROPERTY
@given(data=st.binary(max_size=4096))
def test_model_reader_takes_any_bytes(data: bytes) -> None:
    read_only_model_errors(data)
    # the same bytes behind a good magic, version and CRCs: the shape and layout checks
    header = b"TPMD" + struct.pack("<HH", 1, HEADER_SIZE) + data[8:]
    read_only_model_errors(with_crcs(bytearray(header.ljust(HEADER_SIZE, b"\x00"))))


@PROPERTY
@given(which=st.integers(0, 1), edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                               max_size=12),
       cut=st.integers(0, 1 << 16) | st.none(), extra=st.binary(max_size=64), fix_crcs=st.booleans())
def test_model_reader_takes_mutated_images(tiny_images: list[bytes], which: int,
                                           edits: list[tuple[int, int]], cut: int | None,
                                           extra: bytes, fix_crcs: bool) -> None:
    image = bytearray(tiny_images[which])
    for offset, value in edits:
        image[offset % len(image)] = value
    if cut is not None:
        del image[cut % (len(image) + 1):]
    image += extra
    read_only_model_errors(with_crcs(image) if fix_crcs else bytes(image))


# mostly small shapes (so the layout checks run), sometimes anything a u32 holds
_u32 = st.one_of(st.integers(1, 16), st.integers(0, 40), st.integers(0, 0xFFFFFFFF))
# (dim, n_heads, n_kv_heads): usable ones (heads a multiple of kv heads, even head size) or any
_attention = (st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 8))
              .map(lambda t: (2 * t[0] * t[1] * t[2], t[0] * t[1], t[0]))
              | st.tuples(_u32, _u32, _u32))


@PROPERTY
@given(quant=st.sampled_from([1, 2]) | st.integers(0, 255), group=st.integers(1, 16) | st.integers(0, 0xFFFF),
       attention=_attention, sizes=st.tuples(_u32, _u32, _u32, _u32), flags=st.integers(0, 3),
       tok_offset=st.integers(0, 4096) | _u32, payload=st.binary(max_size=2048))
def test_model_reader_takes_any_header(quant: int, group: int, attention: tuple[int, int, int],
                                       sizes: tuple[int, int, int, int], flags: int, tok_offset: int,
                                       payload: bytes) -> None:
    """Headers that pass their CRC with any shape: sizes that overflow, zeros, huge counts."""
    dim, heads, kv_heads = attention
    hidden, layers, vocab, seq_len = sizes
    head = struct.pack("<4sHHBBH13I", b"TPMD", 1, HEADER_SIZE, quant, 0, group, dim, hidden, layers,
                       heads, kv_heads, vocab, seq_len, flags, len(payload), zlib.crc32(payload),
                       tok_offset, 0, 0)
    head = head[:60] + struct.pack("<I", zlib.crc32(head[:60]))
    read_only_model_errors(head + payload)
