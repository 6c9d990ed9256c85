"""The records of a session, one JSONL line each (schema in docs/jsonl.md).

Frozen dataclasses, so a record handed to one sink cannot be changed under
another. `type` is the record kind and the first key of every line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Record:
    """Base of every JSONL record."""

    type: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict, `type` first."""
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class SessionHeader(Record):
    """First line of every session file: everything needed to reproduce the run."""

    type: ClassVar[str] = "session"
    schema_version: int
    profiler_version: str
    session_id: str
    started_at: str
    device: str
    board: str
    platform: str
    core: str
    clock_hz: int
    timer_hz: int
    firmware_id: str
    model: str
    model_sha256: str
    model_crc32: str
    quantization: str
    emulated: bool
    host: str
    prompt: str
    prompt_tokens: list[int]
    tokens: int
    repetitions: int
    warmup: int
    temperature: float
    seed: int
    serial_url: str
    ram_total_bytes: int | None = None
    flash_total_bytes: int | None = None
    firmware_sections: dict[str, int] | None = None
    emulator: dict[str, Any] | None = None
    arithmetic: str | None = None  # the board's forward pass: "f32" or "fixed-point" (HELLO bit 5)
    model_config: dict[str, Any] | None = None  # the model's shape (ModelConfig), so reports need no model file


@dataclass(frozen=True)
class PhaseRecord(Record):
    """One session phase. Host phases carry host time; prefill/decode also device time."""

    type: ClassVar[str] = "phase"
    name: str
    start_unix_ns: int
    host_ms: float
    repetition: int | None = None
    warmup: bool = False
    device_ms: float | None = None
    start_ticks: int | None = None
    end_ticks: int | None = None
    detail: dict[str, Any] | None = None  # flash: what was written or why flashing was skipped


@dataclass(frozen=True)
class TokenRecord(Record):
    """A generated token, timed by the device."""

    type: ClassVar[str] = "token"
    repetition: int
    warmup: bool
    index: int
    position: int
    token_id: int
    text: str
    ticks: int
    device_ms: float
    # Energy since the previous token (token 0: since prefill start), when power is known (docs/power.md).
    energy_mj: float | None = None


@dataclass(frozen=True)
class SampleRecord(Record):
    """A telemetry sample from the board."""

    type: ClassVar[str] = "sample"
    kind: str
    repetition: int
    warmup: bool
    ticks: int
    values: dict[str, float] = field(default_factory=dict)
    source: str = "device"


@dataclass(frozen=True)
class RepetitionRecord(Record):
    """Figures of one repetition (warmup repetitions are recorded but not summarised)."""

    type: ClassVar[str] = "repetition"
    repetition: int
    warmup: bool
    prompt_tokens: int
    tokens_generated: int
    ttft_ms: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float | None
    token_latency_ms_p50: float | None
    token_latency_ms_p95: float | None
    device_ms: float
    decode_instructions_per_token: float | None
    matches_reference: bool | None
    valid: bool
    reasons: list[str]
    text: str
    energy_mj_per_token: float | None = None
    prefill_energy_mj: float | None = None
    avg_power_mw: float | None = None
    peak_power_mw: float | None = None
    max_temp_c: float | None = None
    energy_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EventRecord(Record):
    """Something a user must know that does not stop the session (over-temperature, throttling)."""

    type: ClassVar[str] = "event"
    kind: str
    message: str
    repetition: int | None = None
    ticks: int | None = None


@dataclass(frozen=True)
class BoardResetRecord(EventRecord):
    """The board restarted mid-session (a HELLO with sequence 0): the repetition in flight is invalid."""

    kind: str = "board_reset"
    message: str = ""
    phase: str | None = None  # the host phase the reset interrupted: prefill, decode, ...
    firmware_id: str = ""  # from the boot HELLO


@dataclass(frozen=True)
class ErrorRecord(Record):
    """Why a session stopped early: interrupted, disconnect, timeout, firmware or crash."""

    type: ClassVar[str] = "error"
    kind: str
    message: str
    phase: str | None
    exit_code: int


@dataclass(frozen=True)
class SummaryRecord(Record):
    """Last line of every session file."""

    type: ClassVar[str] = "summary"
    status: str
    valid: bool
    reasons: list[str]
    repetitions: int
    tokens_generated: int
    decode_tokens_per_s: float | None = None
    decode_tokens_per_s_min: float | None = None
    decode_tokens_per_s_max: float | None = None
    decode_tokens_per_s_stddev: float | None = None
    prefill_tokens_per_s: float | None = None
    ttft_ms: float | None = None
    token_latency_ms_p50: float | None = None
    token_latency_ms_p95: float | None = None
    peak_ram_bytes: int | None = None
    ram_total_bytes: int | None = None
    flash_used_bytes: int | None = None
    model_bytes: int | None = None
    static_ram_bytes: int | None = None
    arena_used_bytes: int | None = None
    stack_peak_bytes: int | None = None
    kv_cache_bytes: int | None = None
    decode_instructions_per_token: float | None = None
    # emulated boards: one instruction per cycle at the board clock (an upper bound), and with run --predict
    # the cycle model's prediction for the real chip (profiler/cycles, docs/performance.md)
    ipc1_decode_tokens_per_s: float | None = None
    predicted_cycles_per_token: float | None = None
    predicted_decode_tokens_per_s: float | None = None
    cycle_model: str | None = None
    predicted_cycles_per_token_by_part: dict[str, float] | None = None
    prediction_note: str | None = None  # why a requested prediction is missing
    energy_mj_per_token: float | None = None
    avg_power_mw: float | None = None
    peak_power_mw: float | None = None
    max_temp_c: float | None = None
    power_source: str | None = None
    temperature_source: str | None = None
    energy_valid: bool | None = None
    energy_reasons: list[str] = field(default_factory=list)
    power_samples_dropped: int | None = None
    reference_match: bool | None = None
    frames_corrupt: int = 0
    frames_lost: int = 0
    host_ms: dict[str, float] = field(default_factory=dict)
    device_ms: float | None = None
    text: str = ""
    quality: dict[str, Any] | None = None  # run --check-quality: the board's logits against fp32
    quantization_error_rate: float | None = None  # 1 - top-1 agreement with fp32, from `quality`


@dataclass(frozen=True)
class RunSettings:
    """What to generate and how often."""

    prompt: str
    prompt_tokens: tuple[int, ...]
    tokens: int
    repetitions: int
    warmup: int
    temperature: float
    seed: int
    quality_tokens: tuple[int, ...] = ()  # run --check-quality: the text's tokens, BOS first
    predict: bool = False  # emulated boards: trace the first repetition and predict the real chip's cycles
