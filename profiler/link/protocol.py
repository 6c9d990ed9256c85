"""Host codec of wire protocol v1 (docs/protocol.md).

Frames are COBS-encoded and end with a zero byte, so the decoder resynchronises
after boot text, line noise or a board reset. The decoder knows nothing of
boards or sessions: it turns bytes into typed events and counts what it had to
throw away.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, fields
from enum import IntEnum, IntFlag

from cobs import cobs

from profiler.errors import ProtocolError

PROTOCOL_VERSION = 1
MAX_PAYLOAD = 1024
_HEADER = struct.Struct("<BBHH")
_CRC = struct.Struct("<I")
_MIN_FRAME = _HEADER.size + _CRC.size


class MsgType(IntEnum):
    """Message types; device to host below 0x80, host to device from 0x80."""

    HELLO = 0x01
    TOKEN = 0x02
    PHASE = 0x03
    MEM = 0x04
    DONE = 0x05
    ERROR = 0x06
    PONG = 0x07
    LOG = 0x08
    CPU = 0x09
    TEMP = 0x0A
    POWER = 0x0B
    LOGITS = 0x0C
    STATUS = 0x0D
    PING = 0x81
    RUN = 0x82
    HELLO_REQ = 0x83
    EVAL = 0x84
    STATUS_REQ = 0x85


class PhaseMark(IntEnum):
    """Phase markers a board sends around prefill and decode."""

    PREFILL_START = 1
    PREFILL_END = 2
    DECODE_START = 3
    DECODE_END = 4


class Capability(IntFlag):
    """HELLO capability bits: the forward pass from bit 0, telemetry from bit 8."""

    INT8 = 1 << 0
    SEEDED_SAMPLING = 1 << 1
    MEM_SAMPLES = 1 << 2
    INT4 = 1 << 3
    EVAL = 1 << 4
    FIXED_POINT = 1 << 5  # the board runs the fixed-point forward pass (no FPU)
    CPU_SAMPLES = 1 << 8
    TEMP_SENSOR = 1 << 9
    INA = 1 << 10
    SYNC_PIN = 1 << 11
    EMULATOR = 1 << 12


class CpuPhase(IntEnum):
    """The phase a CPU frame covers."""

    PREFILL = 1
    DECODE = 2


class TempSource(IntEnum):
    """Where a TEMP reading comes from."""

    ONCHIP = 1


TEMP_FLAG_CALIBRATED = 1 << 0  # TEMP.flags: computed with the chip's factory calibration


class InaChip(IntEnum):
    """The current/power monitor behind POWER frames."""

    INA219 = 1
    INA226 = 2


RUN_FLAG_POWER = 1 << 0  # RUN.flags: stream POWER frames


class ModelStatus(IntEnum):
    """What the board found in its model flash region (HELLO.model_status)."""

    OK = 0
    NO_MODEL = 1
    HEADER_CRC = 2
    PAYLOAD_CRC = 3
    UNSUPPORTED = 4
    TOO_LARGE_FOR_REGION = 5
    TOO_LARGE_FOR_ARENA = 6


MODEL_STATUS_TEXT = {
    ModelStatus.OK: "model ok",
    ModelStatus.NO_MODEL: "no model in the model flash region",
    ModelStatus.HEADER_CRC: "model header checksum wrong",
    ModelStatus.PAYLOAD_CRC: "model payload checksum wrong (image damaged or partly written)",
    ModelStatus.UNSUPPORTED: "model format version or quantization not supported by this firmware",
    ModelStatus.TOO_LARGE_FOR_REGION: "model larger than the model flash region",
    ModelStatus.TOO_LARGE_FOR_ARENA: "model buffers larger than the RAM arena",
}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: type, sequence number and raw payload."""

    type: int
    seq: int
    payload: bytes


def crc32(data: bytes) -> int:
    """CRC-32/IEEE, the checksum of frames and model images."""
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Build one frame, COBS-encoded and terminated by its zero delimiter."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = _HEADER.pack(PROTOCOL_VERSION, msg_type, seq & 0xFFFF, len(payload)) + payload
    return cobs.encode(body + _CRC.pack(crc32(body))) + b"\x00"


def decode_chunk(chunk: bytes) -> Frame | None:
    """Decode the bytes between two delimiters; None when they are not a valid frame."""
    try:
        raw = cobs.decode(chunk)
    except cobs.DecodeError:
        return None
    if len(raw) < _MIN_FRAME:
        return None
    version, msg_type, seq, length = _HEADER.unpack_from(raw)
    if version != PROTOCOL_VERSION or length != len(raw) - _MIN_FRAME:
        return None
    (crc,) = _CRC.unpack_from(raw, len(raw) - _CRC.size)
    if crc != crc32(raw[: -_CRC.size]):
        return None
    return Frame(msg_type, seq, raw[_HEADER.size : _HEADER.size + length])


class FrameDecoder:
    """Splits a byte stream into frames and keeps honest counts of what was lost.

    Bytes before the first good frame are boot noise (`bytes_skipped`); after it,
    every chunk that fails to decode is a corrupt frame, and every gap in the
    sequence numbers is lost frames. A HELLO with sequence 0 means the board
    rebooted, so the sequence restarts without counting a gap; so does a
    sequence number that goes back (half the sequence space behind: a reboot
    whose HELLO was lost), counted in `sequence_restarts`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._expected_seq: int | None = None
        self.synced = False
        self.frames_corrupt = 0
        self.frames_lost = 0
        self.bytes_skipped = 0
        self.bytes_in_frames = 0  # bytes of good frames, delimiters included: the rest of the stream is noise
        self.sequence_restarts = 0  # sequence numbers that went back without a HELLO 0

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames they completed."""
        frames: list[Frame] = []
        self._buffer.extend(data)
        while True:
            end = self._buffer.find(0)
            if end < 0:
                break
            chunk = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if not chunk:
                continue
            frame = decode_chunk(chunk)
            if frame is None:
                if self.synced:
                    self.frames_corrupt += 1
                else:
                    self.bytes_skipped += len(chunk) + 1
                continue
            self._track_sequence(frame)
            self.synced = True
            self.bytes_in_frames += len(chunk) + 1
            frames.append(frame)
        if len(self._buffer) > 4 * MAX_PAYLOAD:
            # No delimiter for far longer than any frame: noise, not a frame in progress.
            if self.synced:
                self.frames_corrupt += 1
            else:
                self.bytes_skipped += len(self._buffer)
            self._buffer.clear()
        return frames

    def count_unusable(self) -> None:
        """A frame passed its CRC but could not be parsed (another protocol revision): count it as corrupt."""
        self.frames_corrupt += 1

    def _track_sequence(self, frame: Frame) -> None:
        if frame.type == MsgType.HELLO and frame.seq == 0:
            self._expected_seq = 1
            return
        if self._expected_seq is not None:
            gap = (frame.seq - self._expected_seq) & 0xFFFF
            if gap < 0x8000:
                self.frames_lost += gap
            else:  # behind us: a board that restarted while its HELLO was lost, not 32768+ lost frames
                self.sequence_restarts += 1
        self._expected_seq = (frame.seq + 1) & 0xFFFF


# ---------------------------------------------------------------------------
# Device events
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """The board's self-description, sent first at boot."""

    protocol_version: int
    timer_bits: int
    capabilities: int
    clock_hz: int
    timer_hz: int
    ram_total_bytes: int
    flash_total_bytes: int
    static_ram_bytes: int
    arena_total_bytes: int
    stack_total_bytes: int
    model_addr: int
    model_region_bytes: int
    model_bytes: int
    model_crc32: int
    model_status: int
    firmware_id: str
    board: str


@dataclass(frozen=True)
class Token:
    """A generated token with the device time right after it was sampled."""

    rep: int
    index: int
    pos: int
    token_id: int
    ticks: int


@dataclass(frozen=True)
class Phase:
    """A prefill/decode boundary in device time."""

    rep: int
    phase: PhaseMark
    ticks: int


@dataclass(frozen=True)
class MemorySample:
    """RAM use the board measured at the end of a repetition."""

    rep: int
    ticks: int
    static_ram_bytes: int
    arena_used_bytes: int
    stack_peak_bytes: int
    stack_total_bytes: int
    kv_cache_bytes: int


@dataclass(frozen=True)
class Done:
    """End of one repetition."""

    rep: int
    tokens_generated: int
    ticks: int
    status: int


@dataclass(frozen=True)
class DeviceError:
    """An error code and message from the firmware."""

    code: int
    message: str


@dataclass(frozen=True)
class Pong:
    """Answer to PING."""

    nonce: int


@dataclass(frozen=True)
class Log:
    """Free text from the firmware."""

    text: str


@dataclass(frozen=True)
class CpuUsage:
    """Busy and I/O-wait ticks of one phase; their sum is the phase's ticks."""

    rep: int
    phase: CpuPhase
    busy_ticks: int
    wait_ticks: int

    @property
    def utilization(self) -> float:
        """Share of the phase's ticks the CPU computed, 0..1 (1.0 for an empty phase)."""
        total = self.busy_ticks + self.wait_ticks
        return self.busy_ticks / total if total else 1.0


@dataclass(frozen=True)
class Temperature:
    """An on-chip temperature reading."""

    rep: int
    flags: int
    ticks: int
    milli_celsius: int
    source: int

    @property
    def celsius(self) -> float:
        """Degrees Celsius."""
        return self.milli_celsius / 1000.0


@dataclass(frozen=True)
class PowerReading:
    """One INA219/INA226 sample the firmware read; `dropped` samples were lost just before it."""

    rep: int
    dropped: int
    ticks: int
    bus_mv: int
    current_ua: int
    power_uw: int
    chip: int


@dataclass(frozen=True)
class Logits:
    """A slice of one position's logits, answering EVAL."""

    rep: int
    pos: int
    offset: int
    values: tuple[float, ...]  # float32 values, exactly as the board computed them


@dataclass(frozen=True)
class Status:
    """Answer to STATUS_REQ: the last RUN the board finished; with `state` DONE_STATE its MEM and DONE follow again."""

    nonce: int
    rep: int
    state: int


STATUS_IDLE = 0  # no RUN finished since boot
STATUS_DONE = 1  # `rep` is the last RUN finished; its MEM and DONE are sent again right after


@dataclass(frozen=True)
class Boot:
    """A HELLO with sequence number 0: the board has just started (power-on, reset, watchdog)."""

    hello: Hello


Event = (Hello | Token | Phase | MemorySample | Done | DeviceError | Pong | Log | CpuUsage | Temperature | PowerReading
         | Logits | Status | Boot)

_HELLO_FIXED = struct.Struct("<BBHIIIIIIIIIIIB")
_HELLO_NUMERIC = [f.name for f in fields(Hello)][:-2]  # all but firmware_id and board
_TOKEN = struct.Struct("<HHHHQ")
_PHASE = struct.Struct("<HBBQ")
_MEM = struct.Struct("<HHQIIIII")
_DONE = struct.Struct("<HHQB")
_ERROR = struct.Struct("<H")
_U32 = struct.Struct("<I")
_RUN = struct.Struct("<HHfIH")
_RUN_EXT = struct.Struct("<BH")
_CPU = struct.Struct("<HBBQQ")
_TEMP = struct.Struct("<HHQiB")
_POWER = struct.Struct("<HHQIiIB")
_LOGITS = struct.Struct("<HHHH")
_EVAL = struct.Struct("<HH")
_STATUS = struct.Struct("<HHB")
_STATUS_REQ = struct.Struct("<H")


def _read_str(payload: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(payload):
        raise ProtocolError("string field runs past the end of the frame")
    length = payload[offset]
    end = offset + 1 + length
    if end > len(payload):
        raise ProtocolError("string field runs past the end of the frame")
    return payload[offset + 1 : end].decode("utf-8", errors="replace"), end


def _unpack(layout: struct.Struct, frame: Frame) -> tuple[int, ...]:
    if len(frame.payload) != layout.size:
        raise ProtocolError(
            f"{MsgType(frame.type).name} payload is {len(frame.payload)} bytes, expected "
            f"{layout.size}; the firmware speaks another protocol revision: rebuild it"
        )
    return layout.unpack(frame.payload)


def parse_event(frame: Frame) -> Event:
    """Turn a device-to-host frame into its typed event."""
    kind = frame.type
    if kind == MsgType.HELLO:
        if len(frame.payload) < _HELLO_FIXED.size:
            raise ProtocolError("HELLO too short; the firmware speaks another protocol revision")
        fixed = _HELLO_FIXED.unpack_from(frame.payload)
        firmware_id, offset = _read_str(frame.payload, _HELLO_FIXED.size)
        board, _ = _read_str(frame.payload, offset)
        numeric = dict(zip(_HELLO_NUMERIC, fixed, strict=True))
        hello = Hello(**numeric, firmware_id=firmware_id, board=board)
        return Boot(hello) if frame.seq == 0 else hello
    if kind == MsgType.TOKEN:
        return Token(*_unpack(_TOKEN, frame))
    if kind == MsgType.PHASE:
        rep, mark, _reserved, ticks = _unpack(_PHASE, frame)
        try:
            return Phase(rep, PhaseMark(mark), ticks)
        except ValueError:
            raise ProtocolError(f"unknown phase marker {mark}") from None
    if kind == MsgType.MEM:
        rep, _reserved, *rest = _unpack(_MEM, frame)
        return MemorySample(rep, *rest)
    if kind == MsgType.DONE:
        return Done(*_unpack(_DONE, frame))
    if kind == MsgType.ERROR:
        if len(frame.payload) < _ERROR.size:
            raise ProtocolError("ERROR frame too short")
        (code,) = _ERROR.unpack_from(frame.payload)
        message, _ = _read_str(frame.payload, _ERROR.size)
        return DeviceError(code, message)
    if kind == MsgType.PONG:
        return Pong(*_unpack(_U32, frame))
    if kind == MsgType.LOG:
        return Log(frame.payload.decode("utf-8", errors="replace"))
    if kind == MsgType.CPU:
        rep, cpu_phase, _reserved, busy, wait = _unpack(_CPU, frame)
        try:
            return CpuUsage(rep, CpuPhase(cpu_phase), busy, wait)
        except ValueError:
            raise ProtocolError(f"unknown CPU phase {cpu_phase}") from None
    if kind == MsgType.TEMP:
        return Temperature(*_unpack(_TEMP, frame))
    if kind == MsgType.POWER:
        return PowerReading(*_unpack(_POWER, frame))
    if kind == MsgType.LOGITS:
        if len(frame.payload) < _LOGITS.size:
            raise ProtocolError("LOGITS frame too short")
        rep, pos, offset, count = _LOGITS.unpack_from(frame.payload)
        if len(frame.payload) != _LOGITS.size + 4 * count:
            raise ProtocolError(f"LOGITS frame holds {len(frame.payload)} bytes for {count} values")
        values = struct.unpack_from(f"<{count}f", frame.payload, _LOGITS.size)
        return Logits(rep, pos, offset, values)
    if kind == MsgType.STATUS:
        return Status(*_unpack(_STATUS, frame))
    raise ProtocolError(f"unknown message type 0x{kind:02x} from the board")


def check_hello(hello: Hello) -> None:
    """Refuse a HELLO whose fields no board can mean, naming the field (its CRC was good: the firmware sent it)."""
    problems = []
    if hello.timer_hz == 0:
        problems.append("timer_hz is 0 (no tick can be turned into time)")
    if hello.clock_hz == 0:
        problems.append("clock_hz is 0")
    if not 1 <= hello.timer_bits <= 64:
        problems.append(f"timer_bits is {hello.timer_bits} (1..64)")
    if hello.model_status not in set(ModelStatus):
        problems.append(f"model_status is {hello.model_status}, which this profiler does not know")
    if problems:
        raise ProtocolError(f"the board's HELLO is unusable: {'; '.join(problems)}; "
                            "flash the firmware that ships with this profiler")


# ---------------------------------------------------------------------------
# Host commands and device payload builders (the latter for tests and fakes)
# ---------------------------------------------------------------------------


def run_payload(
    rep: int,
    n_tokens: int,
    temperature: float,
    seed: int,
    prompt: list[int],
    flags: int | None = None,
    sample_period_us: int = 0,
) -> bytes:
    """Payload of RUN: one repetition of prefill over `prompt` then `n_tokens` tokens.

    With `flags` (RUN_FLAG_POWER: stream POWER frames every `sample_period_us`, 0 = the
    board's default of 10 ms) the payload carries the optional trailing fields; without,
    it is the original layout.
    """
    payload = _RUN.pack(rep, n_tokens, temperature, seed & 0xFFFFFFFF, len(prompt)) + struct.pack(
        f"<{len(prompt)}H", *prompt
    )
    if flags is not None:
        payload += _RUN_EXT.pack(flags, sample_period_us)
    return payload


def eval_payload(rep: int, tokens: list[int]) -> bytes:
    """Payload of EVAL: the forward pass over `tokens` at positions 0.., logits back."""
    return _EVAL.pack(rep, len(tokens)) + struct.pack(f"<{len(tokens)}H", *tokens)


def status_request_payload(nonce: int) -> bytes:
    """Payload of STATUS_REQ: the nonce the board echoes in STATUS."""
    return _STATUS_REQ.pack(nonce & 0xFFFF)


def status_payload(status: Status) -> bytes:
    """Payload of STATUS."""
    return _STATUS.pack(status.nonce, status.rep, status.state)


def ping_payload(nonce: int) -> bytes:
    """Payload of PING."""
    return _U32.pack(nonce & 0xFFFFFFFF)


def _pack_str(text: str) -> bytes:
    raw = text.encode("utf-8")[:255]
    return bytes([len(raw)]) + raw


def hello_payload(hello: Hello) -> bytes:
    """Payload of HELLO, as a board sends it."""
    fixed = (
        hello.protocol_version, hello.timer_bits, hello.capabilities, hello.clock_hz,
        hello.timer_hz, hello.ram_total_bytes, hello.flash_total_bytes, hello.static_ram_bytes,
        hello.arena_total_bytes, hello.stack_total_bytes, hello.model_addr,
        hello.model_region_bytes, hello.model_bytes, hello.model_crc32, hello.model_status,
    )
    return _HELLO_FIXED.pack(*fixed) + _pack_str(hello.firmware_id) + _pack_str(hello.board)


def token_payload(token: Token) -> bytes:
    """Payload of TOKEN."""
    return _TOKEN.pack(token.rep, token.index, token.pos, token.token_id, token.ticks)


def phase_payload(phase: Phase) -> bytes:
    """Payload of PHASE."""
    return _PHASE.pack(phase.rep, int(phase.phase), 0, phase.ticks)


def error_payload(error: DeviceError) -> bytes:
    """Payload of ERROR."""
    return _ERROR.pack(error.code) + _pack_str(error.message)


def cpu_payload(cpu: CpuUsage) -> bytes:
    """Payload of CPU."""
    return _CPU.pack(cpu.rep, int(cpu.phase), 0, cpu.busy_ticks, cpu.wait_ticks)


def temp_payload(temp: Temperature) -> bytes:
    """Payload of TEMP."""
    return _TEMP.pack(temp.rep, temp.flags, temp.ticks, temp.milli_celsius, temp.source)


def power_payload(power: PowerReading) -> bytes:
    """Payload of POWER."""
    return _POWER.pack(
        power.rep, power.dropped, power.ticks, power.bus_mv, power.current_ua, power.power_uw, power.chip
    )
