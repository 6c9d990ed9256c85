"""Power, energy and temperature of a session, whatever measures them.

Three power sources, one shape: each turns a repetition into a `PowerBatch`
on some clock plus a `TickMap` from device ticks to that clock, and the same
`energy_per_token` does the rest.

- `ModelPower`: emulated boards. The documented board model
  (`profiler.power.emulated`) over the device timeline; `source: "model"`.
- `MeterPower`: an external meter (PPK2, Joulescope). The firmware raises its
  sync line for the decode; the k-th complete pulse the meter sees is the
  k-th repetition's decode, and its two edges anchor device ticks to meter time.
- Device INA219/INA226 samples arrive as POWER frames and are handled like a
  slow meter on the device clock (`InaPower`).

Temperature is the board's on-chip sensor on hardware and the thermal model on
emulated boards (QEMU's ADC returns synthetic values, so device readings there
are not used).
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from profiler.errors import LinkTimeout
from profiler.link.protocol import RUN_FLAG_POWER, CpuPhase, CpuUsage, PhaseMark, PowerReading, Temperature
from profiler.measure import RepetitionEvents
from profiler.power import PowerBatch, PowerMeter, PowerSample
from profiler.power.emulated import EmulatedBoardModel, Interval, PowerModel, ThermalModel
from profiler.power.energy import (
    MAX_DROP_FRACTION,
    TickMap,
    TokenEnergy,
    drop_reason,
    energy_mj,
    energy_per_token,
    sync_windows,
)
from profiler.records import EventRecord, Record, RepetitionRecord, SampleRecord, TokenRecord
from profiler.stats import median

OVER_TEMPERATURE_C = 85.0
SAMPLE_PERIOD_S = 0.01  # JSONL power samples: means over 10 ms; energy uses every sample


@dataclass
class RepetitionTelemetry:
    """What one repetition adds: samples for the JSONL and its energy figures."""

    samples: list[SampleRecord] = field(default_factory=list)
    energy: TokenEnergy | None = None
    max_temp_c: float | None = None
    reasons: list[str] = field(default_factory=list)


class PowerSource(ABC):
    """Where a session's power samples come from."""

    source: str

    def start(self, timer_hz: int) -> None:
        """The session is connected; begin measuring."""
        self.timer_hz = timer_hz

    @abstractmethod
    def batch_for(self, events: RepetitionEvents) -> tuple[PowerBatch, TickMap]:
        """Samples covering the repetition, and the map from device ticks to their clock."""

    def drop_reason(self) -> str | None:
        """Why energy figures are invalid because samples were lost, if they are."""
        return None

    def dropped(self) -> int | None:
        """Samples lost so far, for sources that can lose any."""
        return None

    def run_flags(self) -> tuple[int | None, int]:
        """RUN's optional flags and sample period (µs) this source needs from the board."""
        return None, 0

    def stop(self) -> None:  # noqa: B027 - most sources have nothing to release
        """The session is over."""

    def device_clock(self) -> TickMap:
        """The device's own clock, in seconds: for sources that live on it."""
        return TickMap(origin_ticks=0, origin_s=0.0, seconds_per_tick=1.0 / self.timer_hz)


class ModelPower(PowerSource):
    """The emulated board's documented power and thermal model, on the device clock."""

    source = "model"

    def __init__(self, power: PowerModel, thermal: ThermalModel, supply_mv: int) -> None:
        self.model = EmulatedBoardModel(power, thermal, period_s=0.001)
        self.supply_v = supply_mv / 1000.0
        self.temperatures: list[tuple[int, float]] = []  # (device ticks, modelled temperature)

    def batch_for(self, events: RepetitionEvents) -> tuple[PowerBatch, TickMap]:
        marks = events.phases
        start_ticks = marks[PhaseMark.PREFILL_START]
        end_ticks = marks.get(PhaseMark.DECODE_END, events.tokens[-1].ticks)
        # Repetitions are laid end to end on the model's clock. On QEMU the gap between two of them
        # lasts as long as the host takes to send the next command, so counting it would make the
        # modelled temperature, and the rounding of absolute times, depend on the host.
        start = self.model.clock_s
        clock = TickMap(origin_ticks=start_ticks, origin_s=start, seconds_per_tick=1.0 / self.timer_hz)
        end = clock.meter_s(end_ticks).item()
        # Our firmware busy-polls the UART, so its CPU never sleeps: it draws run current throughout.
        samples = list(self.model.run([Interval(start, end, events.utilization or 1.0)]))
        self.temperatures = [(start_ticks + round((s.t_s - start) * self.timer_hz), s.temp_c) for s in samples]
        readings = [PowerSample(start, self.model.power.power_mw(1.0) / 1e3 / self.supply_v, self.supply_v)]
        readings += [PowerSample(s.t_s, s.power_mw / 1e3 / self.supply_v, self.supply_v) for s in samples]
        return PowerBatch.from_samples(readings), clock


class MeterPower(PowerSource):
    """An external meter; its sync input sees one pulse per decode."""

    def __init__(self, meter: PowerMeter, supply_mv: int, sync_bit: int = 0, window_timeout_s: float = 5.0) -> None:
        self.meter = meter
        self.source = meter.spec.kind
        self.supply_mv = supply_mv
        self.sync_bit = sync_bit
        self.window_timeout_s = window_timeout_s
        self._batches: list[PowerBatch] = []
        self._last_end_s = float("-inf")  # end of the pulse the previous repetition used
        self._started = False

    def start(self, timer_hz: int) -> None:
        super().start(timer_hz)
        self.meter.configure(voltage_mv=self.meter.spec.int_option("voltage_mv", 800, 5000) or self.supply_mv)
        self.meter.start()
        self._started = True

    def batch_for(self, events: RepetitionEvents) -> tuple[PowerBatch, TickMap]:
        deadline = time.monotonic() + self.window_timeout_s
        while True:
            self._batches.append(self.meter.read(timeout_s=0.05))
            stream = PowerBatch.concat(self._batches)
            windows = sync_windows(stream, self.sync_bit) if len(stream) > 1 else []
            fresh = [w for w in windows if w.start_s > self._last_end_s]
            if fresh:
                break
            if time.monotonic() > deadline:
                raise LinkTimeout(
                    f"power meter saw no decode pulse on logic input {self.sync_bit} within "
                    f"{self.window_timeout_s:.0f} s; wire the board's sync pin to it"
                )
        window = fresh[0]
        self._last_end_s = window.end_s
        marks = events.phases
        ticks_map = TickMap.fit([marks[PhaseMark.DECODE_START], marks[PhaseMark.DECODE_END]],
                                [window.start_s, window.end_s])
        # Keep what follows this pulse (the next pulse may have begun); the rest has been used.
        self._batches = [stream.window(max(window.end_s - 0.5, float(stream.t_s[0])), float(stream.t_s[-1]))]
        return stream, ticks_map

    def drop_reason(self) -> str | None:
        return drop_reason(self.meter.stats)

    def dropped(self) -> int | None:
        return self.meter.stats.dropped

    def stop(self) -> None:
        try:
            if self._started:
                self.meter.stop()
        finally:
            self.meter.close()


class InaPower(PowerSource):
    """The board's own INA219/INA226, read by the firmware and sent as POWER frames (device clock).

    On emulated boards the firmware's INA driver reads a register-level stand-in
    whose current comes from the board power model, so the source is named so.
    """

    def __init__(self, chip: str, emulated: bool, sample_period_us: int = 0) -> None:
        self.source = f"{chip}-standin" if emulated else chip
        self.sample_period_us = sample_period_us
        self._dropped = 0
        self._received = 0

    def run_flags(self) -> tuple[int | None, int]:
        return RUN_FLAG_POWER, self.sample_period_us

    def batch_for(self, events: RepetitionEvents) -> tuple[PowerBatch, TickMap]:
        readings = [e for e in events.device_telemetry if isinstance(e, PowerReading)]
        self._received += len(readings)
        self._dropped += sum(r.dropped for r in readings)
        if len(readings) < 2:
            raise LinkTimeout("the board sent fewer than two POWER samples; check the INA wiring and its I2C address")
        clock = self.device_clock()
        samples = [PowerSample(clock.meter_s(r.ticks).item(), r.current_ua / 1e6, r.bus_mv / 1e3) for r in readings]
        # Samples come every period, so the repetition's ends fall between them: hold the
        # nearest reading out to the prefill start and the decode end (zero-order hold).
        first, last = samples[0], samples[-1]
        start = clock.meter_s(events.phases.get(PhaseMark.PREFILL_START, readings[0].ticks)).item()
        end = clock.meter_s(events.phases.get(PhaseMark.DECODE_END, readings[-1].ticks)).item()
        if start < first.t_s:
            samples.insert(0, PowerSample(start, first.current_a, first.voltage_v))
        if end > last.t_s:
            samples.append(PowerSample(end, last.current_a, last.voltage_v))
        return PowerBatch.from_samples(samples), clock

    def dropped(self) -> int | None:
        return self._dropped

    def drop_reason(self) -> str | None:
        total = self._received + self._dropped
        if total and self._dropped / total > MAX_DROP_FRACTION:
            return f"board lost {self._dropped} of {total} INA samples (> {MAX_DROP_FRACTION:.1%})"
        return None


def device_telemetry(record: RepetitionRecord, events: RepetitionEvents, emulated: bool) -> tuple[
        RepetitionRecord, list[Record]]:
    """CPU and on-chip temperature samples the board sent; sets the repetition's utilization."""
    out: list[Record] = []
    cpu = {e.phase: e for e in events.device_telemetry if isinstance(e, CpuUsage)}
    if cpu:
        values: dict[str, float] = {}
        for phase, usage in cpu.items():
            name = CpuPhase(phase).name.lower()
            values.update({f"{name}_busy_ticks": usage.busy_ticks, f"{name}_wait_ticks": usage.wait_ticks,
                           f"{name}_utilization_percent": round(usage.utilization * 100, 4)})
        if CpuPhase.DECODE in cpu:
            events.utilization = cpu[CpuPhase.DECODE].utilization
        end = events.phases.get(PhaseMark.DECODE_END, events.tokens[-1].ticks if events.tokens else 0)
        out.append(SampleRecord(kind="cpu", repetition=events.rep, warmup=events.warmup, ticks=end, values=values))
    if emulated:  # QEMU's ADC returns synthetic values: emulated boards use the thermal model instead
        return record, out
    temps = [t for t in events.device_telemetry if isinstance(t, Temperature)]
    out += [SampleRecord(kind="temperature", repetition=events.rep, warmup=events.warmup, ticks=t.ticks,
                         values={"temp_c": t.celsius}, source="device") for t in temps]
    if temps:
        record = dataclasses.replace(record, max_temp_c=max(t.celsius for t in temps))
    return record, out


def over_temperature(record: RepetitionRecord) -> list[Record]:
    """An event when the repetition ran hotter than the limit."""
    if record.max_temp_c is None or record.max_temp_c <= OVER_TEMPERATURE_C:
        return []
    return [EventRecord(kind="over_temperature", repetition=record.repetition, message=(
        f"board reached {record.max_temp_c:.1f} °C (> {OVER_TEMPERATURE_C:.0f} °C): figures may include "
        "throttling; cool the board"))]


def repetition_telemetry(source: PowerSource, events: RepetitionEvents) -> RepetitionTelemetry:
    """Energy per token and JSONL samples of one repetition."""
    out = RepetitionTelemetry()
    if len(events.tokens) < 2 or PhaseMark.PREFILL_START not in events.phases:
        out.reasons.append("too few tokens for energy per token")
        return out
    batch, ticks_map = source.batch_for(events)
    token_s = ticks_map.meter_s([t.ticks for t in events.tokens])
    start_s = ticks_map.meter_s(events.phases[PhaseMark.PREFILL_START]).item()
    try:
        out.energy = energy_per_token(batch, token_s, start_s=start_s if start_s >= batch.t_s[0] else None)
    except ValueError as exc:
        out.reasons.append(f"energy per token: {exc}")
        return out
    out.samples = _power_samples(batch, ticks_map, start_s, float(token_s[-1]), events, source.source)
    if isinstance(source, ModelPower):
        out.samples += [
            SampleRecord(kind="temperature", repetition=events.rep, warmup=events.warmup,
                         ticks=ticks, values={"temp_c": round(temp, 3)}, source="model")
            for ticks, temp in source.temperatures[:: max(1, int(SAMPLE_PERIOD_S / source.model.period_s))]
        ]
        out.max_temp_c = max((temp for _, temp in source.temperatures), default=None)
    return out


def _power_samples(batch: PowerBatch, ticks_map: TickMap, t0: float, t1: float, events: RepetitionEvents,
                   source: str) -> list[SampleRecord]:
    samples: list[SampleRecord] = []
    edges = np.arange(t0, t1, SAMPLE_PERIOD_S)
    for a in edges:
        b = min(a + SAMPLE_PERIOD_S, t1)
        if b <= a or a < batch.t_s[0] or b > batch.t_s[-1]:
            continue
        mean_mw = energy_mj(batch, float(a), float(b)) / (b - a)
        ticks = ticks_map.origin_ticks + (b - ticks_map.origin_s) / ticks_map.seconds_per_tick
        samples.append(SampleRecord(kind="power", repetition=events.rep, warmup=events.warmup, ticks=int(ticks),
                                    values={"power_mw": round(mean_mw, 4)}, source=source))
    return samples


def board_models(board: Any) -> tuple[PowerModel, ThermalModel] | None:
    """The board profile's power and thermal model, if it has one."""
    if getattr(board, "active_mw", None) is None:
        return None
    return (PowerModel(board.idle_mw, board.active_mw),
            ThermalModel(board.ambient_c, board.thermal_resistance_c_per_w, board.thermal_time_constant_s))


def token_energies(tokens: Sequence[TokenRecord], energy: TokenEnergy | None) -> list[TokenRecord]:
    """Token records with `energy_mj`: token i >= 1 the energy since token i-1, token 0 its prefill's."""
    if energy is None or len(energy.per_token_mj) != len(tokens) - 1:
        return list(tokens)
    per_token = [energy.prefill_mj, *energy.per_token_mj]
    return [dataclasses.replace(t, energy_mj=mj) for t, mj in zip(tokens, per_token, strict=True)]


def with_telemetry(record: RepetitionRecord, source: PowerSource, events: RepetitionEvents,
                   tokens: Sequence[TokenRecord] = ()) -> tuple[RepetitionRecord, list[Record]]:
    """The repetition record with its energy and temperature, and the records to write before it.

    `tokens` are the repetition's token records, held back until their energy is known; they come
    back first among the records to write, each with its `energy_mj`.
    """
    result = repetition_telemetry(source, events)
    energy = result.energy
    extra: list[Record] = [*token_energies(tokens, energy), *result.samples]
    return dataclasses.replace(
        record,
        energy_mj_per_token=energy.mj_per_token if energy else None,
        prefill_energy_mj=energy.prefill_mj if energy else None,
        avg_power_mw=energy.avg_power_mw if energy else None,
        peak_power_mw=energy.peak_power_mw if energy else None,
        max_temp_c=result.max_temp_c if result.max_temp_c is not None else record.max_temp_c,
        energy_reasons=result.reasons,
    ), extra


def summary_telemetry(records: list[RepetitionRecord], source: PowerSource | None, emulated: bool) -> dict[str, Any]:
    """Summary fields: medians over measured repetitions, peaks over all; energy invalid when samples were lost."""
    measured = [r for r in records if not r.warmup and r.valid]
    temps = [r.max_temp_c for r in records if r.max_temp_c is not None]
    fields: dict[str, Any] = {
        "max_temp_c": max(temps) if temps else None,
        "temperature_source": ("model" if isinstance(source, ModelPower) else None if emulated or not temps
                               else "device"),
    }
    if source is None:
        return fields
    reasons = [f"repetition {r.repetition}: {why}" for r in measured for why in r.energy_reasons]
    lost = source.drop_reason()
    if lost:
        reasons.append(lost)
    per_token = [r.energy_mj_per_token for r in measured if r.energy_mj_per_token is not None]
    if not per_token and not reasons:
        reasons.append("no repetition has energy figures")
    valid = not reasons
    peaks = [r.peak_power_mw for r in measured if r.peak_power_mw is not None]
    power = [r.avg_power_mw for r in measured if r.avg_power_mw is not None]
    return {
        **fields,
        "energy_mj_per_token": median(per_token) if valid else None,
        "avg_power_mw": median(power) if valid else None,
        "peak_power_mw": max(peaks) if valid and peaks else None,
        "power_source": source.source,
        "energy_valid": valid,
        "energy_reasons": reasons,
        "power_samples_dropped": source.dropped(),
    }
