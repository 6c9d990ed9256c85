"""The power meter interface, its sample batches, meter specs and the one registry.

A meter is `configure`, `start`, `stop`, `read`, `close` (labgrid's small
power interface plus the two calls a streaming instrument needs). `read`
hands back one `PowerBatch`: numpy arrays of every sample received since the
previous call, so 100 kS/s costs a few array operations per batch instead of
one Python object per sample. Times are the meter's own clock (seconds since
`start`), never host arrival times; the host receive time rides along per
batch for diagnostics only.

Meters are chosen by a spec, `kind[:address][?key=value&...]`, e.g.
`ppk2:/dev/ttyACM1?mode=source&voltage_mv=3300`. Each kind registers its class
with `@register`; third-party meters register through the
`tiny_profiler.power_meters` entry point group. Kinds registered elsewhere in
the profiler: `ina219`, `ina226` (read by the firmware) and `model` (the
emulated board's power model).
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from profiler.errors import ConfigError, ProfilerError

FloatArray = npt.NDArray[np.float64]
LogicArray = npt.NDArray[np.uint8]

_ENTRY_POINT_GROUP = "tiny_profiler.power_meters"
_BUILTIN = ("profiler.power.ppk2", "profiler.power.joulescope")
_REGISTRY: dict[str, type[PowerMeter]] = {}
M = TypeVar("M", bound="type[PowerMeter]")

# -- samples -----------------------------------------------------------------


@dataclass(frozen=True)
class PowerSample:
    """One reading, for meters that deliver a few samples a second (INA sensors, models)."""

    t_s: float  # meter time since start()
    current_a: float
    voltage_v: float
    logic: int = 0  # digital inputs, bit k = input k

    @property
    def power_mw(self) -> float:
        """Power in mW."""
        return self.current_a * self.voltage_v * 1e3


def _frozen(array: npt.ArrayLike, dtype: type) -> npt.NDArray[Any]:
    out: npt.NDArray[Any] = np.asarray(array, dtype=dtype)
    if out.ndim != 1:
        out = out.reshape(-1)
    if out.flags.writeable:
        out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class PowerBatch:
    """Samples of one meter, as parallel read-only arrays of equal length.

    `t_s` is the meter's time base (seconds since `start`); for a fixed-rate
    meter it is the sample index over the rate, so a dropped sample leaves a
    gap in `t_s` instead of shifting everything after it. `dropped` counts the
    samples lost before or within this batch (counter gaps and buffer
    overflows); `host_ns` is `time.monotonic_ns()` when the newest samples of
    the batch arrived.
    """

    t_s: FloatArray
    current_a: FloatArray
    voltage_v: FloatArray
    logic: LogicArray
    dropped: int = 0
    host_ns: int = 0

    def __post_init__(self) -> None:
        n = len(self.t_s)
        for name in ("current_a", "voltage_v", "logic"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PowerBatch.{name} has {len(getattr(self, name))} samples, t_s has {n}")
        object.__setattr__(self, "t_s", _frozen(self.t_s, np.float64))
        object.__setattr__(self, "current_a", _frozen(self.current_a, np.float64))
        object.__setattr__(self, "voltage_v", _frozen(self.voltage_v, np.float64))
        object.__setattr__(self, "logic", _frozen(self.logic, np.uint8))

    def __len__(self) -> int:
        return len(self.t_s)

    @property
    def power_w(self) -> FloatArray:
        """Power per sample in W."""
        return self.current_a * self.voltage_v

    @property
    def power_mw(self) -> FloatArray:
        """Power per sample in mW."""
        return self.current_a * self.voltage_v * 1e3

    def sample(self, i: int) -> PowerSample:
        """Sample `i` as one object (for display and tests, not for bulk work)."""
        return PowerSample(float(self.t_s[i]), float(self.current_a[i]), float(self.voltage_v[i]), int(self.logic[i]))

    def window(self, t0_s: float, t1_s: float) -> PowerBatch:
        """The samples with t0_s <= t_s <= t1_s (views, no copy)."""
        i0 = int(np.searchsorted(self.t_s, t0_s, side="left"))
        i1 = int(np.searchsorted(self.t_s, t1_s, side="right"))
        return PowerBatch(self.t_s[i0:i1], self.current_a[i0:i1], self.voltage_v[i0:i1], self.logic[i0:i1],
                          0, self.host_ns)

    @staticmethod
    def empty(dropped: int = 0, host_ns: int = 0) -> PowerBatch:
        """A batch without samples (possibly reporting drops)."""
        z = np.empty(0, dtype=np.float64)
        return PowerBatch(z, z, z, np.empty(0, dtype=np.uint8), dropped, host_ns)

    @staticmethod
    def constant_voltage(t_s: FloatArray, current_a: FloatArray, voltage_v: float, logic: LogicArray | None = None,
                         dropped: int = 0, host_ns: int = 0) -> PowerBatch:
        """A batch whose voltage is one set value (PPK2 source mode, a declared supply), stored without a copy."""
        n = len(t_s)
        volts = np.broadcast_to(np.float64(voltage_v), (n,))
        bits = np.zeros(n, dtype=np.uint8) if logic is None else logic
        return PowerBatch(t_s, current_a, volts, bits, dropped, host_ns)

    @staticmethod
    def from_samples(samples: Sequence[PowerSample], dropped: int = 0, host_ns: int = 0) -> PowerBatch:
        """A batch from individual readings (slow meters)."""
        return PowerBatch(
            np.array([s.t_s for s in samples], dtype=np.float64),
            np.array([s.current_a for s in samples], dtype=np.float64),
            np.array([s.voltage_v for s in samples], dtype=np.float64),
            np.array([s.logic for s in samples], dtype=np.uint8),
            dropped, host_ns,
        )

    @staticmethod
    def concat(batches: Iterable[PowerBatch]) -> PowerBatch:
        """One batch from consecutive batches of one meter; drops add up, the newest host time is kept."""
        parts = [b for b in batches]
        if not parts:
            return PowerBatch.empty()
        if len(parts) == 1:
            return parts[0]
        return PowerBatch(
            np.concatenate([b.t_s for b in parts]),
            np.concatenate([b.current_a for b in parts]),
            np.concatenate([b.voltage_v for b in parts]),
            np.concatenate([b.logic for b in parts]),
            sum(b.dropped for b in parts),
            max(b.host_ns for b in parts),
        )


# -- what a meter reports about itself -----------------------------------------


@dataclass(frozen=True)
class MeterInfo:
    """What `configure` found and set, for the session header."""

    kind: str
    address: str
    model: str
    mode: str  # "source" (the meter powers the board), "ampere" (in series with the supply), "sensor", "model"
    voltage_mv: int | None  # set (source) or declared (ampere) supply voltage; None when measured per sample
    sample_rate_hz: float | None  # None for meters without a fixed rate
    logic_inputs: int  # digital inputs visible in PowerBatch.logic
    calibrated: bool | None = None
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MeterStats:
    """Sample accounting since `start`.

    `received` samples came off the wire; `lost_in_transfer` were missing from
    the stream (sample-counter gaps: the meter or the link dropped them);
    `lost_in_host` were received but thrown away because nobody read them
    before the bounded buffer filled. `corrupt` words were unreadable (they are
    also counter gaps); `resyncs` counts word-alignment recoveries.
    """

    received: int = 0
    lost_in_transfer: int = 0
    lost_in_host: int = 0
    corrupt: int = 0
    resyncs: int = 0

    @property
    def dropped(self) -> int:
        """Samples lost for any reason."""
        return self.lost_in_transfer + self.lost_in_host

    @property
    def drop_fraction(self) -> float:
        """Lost samples over samples the meter took (0 when nothing was taken)."""
        total = self.received + self.lost_in_transfer
        return self.dropped / total if total else 0.0


# -- the interface ---------------------------------------------------------------


class PowerMeter(ABC):
    """A power meter: configure, start, stop, read, close.

    `configure` talks to the instrument (opens it, reads its calibration, sets
    its mode and voltage); `start` makes t = 0 and begins streaming into a
    bounded buffer; `read` returns everything buffered since the last call;
    `stop` ends streaming after the samples already on their way arrived.
    `read` raises LinkError when the meter stopped answering, after the
    samples it did deliver were handed out.
    """

    kind: ClassVar[str]

    def __init__(self, spec: MeterSpec) -> None:
        self.spec = spec

    @abstractmethod
    def configure(self, *, voltage_mv: int | None = None, mode: str | None = None) -> MeterInfo:
        """Open and set up the meter; arguments override the spec's options."""

    @abstractmethod
    def start(self) -> None:
        """Begin sampling; the first sample is t = 0 on the meter's time base."""

    @abstractmethod
    def stop(self) -> None:
        """End sampling; samples already sent are still delivered by `read`."""

    @abstractmethod
    def read(self, timeout_s: float = 0.0) -> PowerBatch:
        """Samples since the last read, waiting up to `timeout_s` for the first one."""

    @property
    @abstractmethod
    def stats(self) -> MeterStats:
        """Sample accounting since `start`."""

    @property
    def dropped(self) -> int:
        """Samples lost since `start`."""
        return self.stats.dropped

    @abstractmethod
    def close(self) -> None:
        """Stop if needed and release the instrument. Safe to call twice."""

    def __enter__(self) -> PowerMeter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# -- a bounded buffer between a reader thread and read() ---------------------------


class BatchQueue:
    """Batches from a reader thread to `read()`, bounded in samples; overflow drops the oldest and counts it."""

    def __init__(self, capacity_samples: int) -> None:
        self.capacity = max(1, capacity_samples)
        self._batches: deque[PowerBatch] = deque()
        self._held = 0
        self._overflow_pending = 0
        self.lost = 0
        self._error: ProfilerError | None = None
        self._cond = threading.Condition()

    def put(self, batch: PowerBatch) -> None:
        """Add a batch (reader thread)."""
        with self._cond:
            self._batches.append(batch)
            self._held += len(batch)
            while self._held > self.capacity and len(self._batches) > 1:
                old = self._batches.popleft()
                self._held -= len(old)
                self.lost += len(old)
                self._overflow_pending += len(old) + old.dropped
            self._cond.notify_all()

    def fail(self, error: ProfilerError) -> None:
        """The reader stopped on `error`; `take` raises it once the buffered samples are out."""
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget everything (a new start)."""
        with self._cond:
            self._batches.clear()
            self._held = self._overflow_pending = self.lost = 0
            self._error = None

    def take(self, timeout_s: float = 0.0) -> PowerBatch:
        """Everything buffered as one batch; waits up to `timeout_s` when empty."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._batches and self._error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if not self._batches and self._error is not None:
                raise self._error
            parts = list(self._batches)
            self._batches.clear()
            self._held = 0
            pending, self._overflow_pending = self._overflow_pending, 0
        batch = PowerBatch.concat(parts)
        if pending:
            batch = PowerBatch(batch.t_s, batch.current_a, batch.voltage_v, batch.logic,
                               batch.dropped + pending, batch.host_ns)
        return batch


# -- specs -------------------------------------------------------------------------

_SPEC = re.compile(r"^(?P<kind>[a-z][a-z0-9_-]*)(?::(?P<address>[^?]+))?(?:\?(?P<query>.*))?$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class MeterSpec:
    """A parsed meter spec: `kind[:address][?key=value&...]`."""

    kind: str
    address: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def option(self, key: str) -> str | None:
        """The raw value of option `key`, or None."""
        return dict(self.options).get(key)

    def check_options(self, allowed: Iterable[str]) -> None:
        """ConfigError for an option the meter does not know."""
        allowed = sorted(allowed)
        for key, _ in self.options:
            if key not in allowed:
                known = ", ".join(allowed) or "none"
                raise ConfigError(f"power meter {self.text!r}: unknown option {key!r} (known: {known})")

    def int_option(self, key: str, lo: int, hi: int) -> int | None:
        """Option `key` as an integer in [lo, hi], or None when absent."""
        raw = self.option(key)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise ConfigError(f"power meter {self.text!r}: {key}={raw} must be an integer from {lo} to {hi}")
        return value

    def float_option(self, key: str, lo: float, hi: float) -> float | None:
        """Option `key` as a number in [lo, hi], or None when absent."""
        raw = self.option(key)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not lo <= value <= hi:
            raise ConfigError(f"power meter {self.text!r}: {key}={raw} must be a number from {lo:g} to {hi:g}")
        return value

    def choice_option(self, key: str, choices: Sequence[str]) -> str | None:
        """Option `key` as one of `choices`, or None when absent."""
        raw = self.option(key)
        if raw is not None and raw not in choices:
            raise ConfigError(f"power meter {self.text!r}: {key}={raw} must be one of {', '.join(choices)}")
        return raw


def parse_spec(text: str) -> MeterSpec:
    """Parse `kind[:address][?key=value&...]`; ConfigError with an example when it is not one."""
    example = "e.g. ppk2:/dev/ttyACM1?mode=source&voltage_mv=3300, ina226, joulescope"
    match = _SPEC.match(text.strip())
    if match is None:
        raise ConfigError(f"power meter {text!r} is not kind[:address][?key=value&...]; {example}")
    query = match.group("query")
    options: list[tuple[str, str]] = []
    if query is not None:
        for part in query.split("&"):
            key, sep, value = part.partition("=")
            if not sep or not _KEY.match(key) or not value:
                raise ConfigError(f"power meter {text!r}: option {part!r} is not key=value; {example}")
            if any(k == key for k, _ in options):
                raise ConfigError(f"power meter {text!r}: option {key!r} given twice")
            options.append((key, value))
    return MeterSpec(match.group("kind"), match.group("address"), tuple(options), text.strip())


# -- registry ------------------------------------------------------------------------


def register(cls: M) -> M:
    """Class decorator adding a meter kind to the registry; a duplicate kind raises."""
    kind = cls.kind
    if kind in _REGISTRY and _REGISTRY[kind] is not cls:
        raise ValueError(f"power meter kind {kind!r} registered twice")
    _REGISTRY[kind] = cls
    return cls


def _load_builtin_and_plugins() -> None:
    import importlib

    for module in _BUILTIN:
        importlib.import_module(module)
    for entry in entry_points(group=_ENTRY_POINT_GROUP):
        entry.load()


def registered_kinds() -> list[str]:
    """Meter kinds available here."""
    _load_builtin_and_plugins()
    return sorted(_REGISTRY)


def meter_class(kind: str) -> type[PowerMeter]:
    """The class registered for `kind`; ConfigError naming the available kinds otherwise."""
    _load_builtin_and_plugins()
    factory: type[PowerMeter] | None = _REGISTRY.get(kind)
    if factory is None:
        raise ConfigError(f"no power meter of kind {kind!r}; available: {', '.join(sorted(_REGISTRY))}")
    return factory


def open_meter(spec: str | MeterSpec) -> PowerMeter:
    """The meter for a spec, built but not yet talking to the instrument (call `configure`)."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    factory: Callable[[MeterSpec], PowerMeter] = meter_class(parsed.kind)
    return factory(parsed)
