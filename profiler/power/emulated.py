"""Power and temperature of an emulated board, from documented models driven by measured activity.

QEMU has no power rail and no thermal mass, so an emulated board's power and
temperature are modelled, and every sample says so (`source: "model"`):

- power: `P = idle_mw + (active_mw - idle_mw) * utilization`, where utilization
  is the share of device ticks the CPU computed (the board's CPU frames), and the
  two figures come from the board profile (datasheet run and idle currents at
  the supply voltage);
- temperature: a first-order thermal model, `dT/dt = (T_ambient + P * R_th - T) / tau`,
  with the package's junction-to-ambient resistance `R_th` and a time constant
  `tau`, integrated exactly over each interval of constant power.

Time is device time (ticks / timer_hz), so the samples line up with the token
timeline by construction. The session lays repetitions end to end on the
model's clock: the gaps between them last, on QEMU, as long as the host takes
to send the next command, and counting them would make two identical runs
report different temperatures.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class PowerModel:
    """Board power at idle and at full compute (mW)."""

    idle_mw: float
    active_mw: float

    def power_mw(self, utilization: float) -> float:
        """Power at a CPU utilization in [0, 1]."""
        u = min(max(utilization, 0.0), 1.0)
        return self.idle_mw + (self.active_mw - self.idle_mw) * u


@dataclass(frozen=True)
class ThermalModel:
    """First-order junction temperature model."""

    ambient_c: float
    resistance_c_per_w: float
    time_constant_s: float

    def settle(self, temp_c: float, power_mw: float, seconds: float) -> float:
        """Temperature after `seconds` at constant `power_mw`, starting from `temp_c`."""
        target = self.ambient_c + power_mw / 1000.0 * self.resistance_c_per_w
        return target + (temp_c - target) * math.exp(-seconds / self.time_constant_s)


@dataclass(frozen=True)
class Interval:
    """A stretch of device time at one utilization."""

    start_s: float
    end_s: float
    utilization: float


@dataclass(frozen=True)
class ModelSample:
    """One modelled sample at device time `t_s`."""

    t_s: float
    power_mw: float
    temp_c: float


@dataclass
class EmulatedBoardModel:
    """Walks a device timeline and yields power and temperature samples every `period_s`."""

    power: PowerModel
    thermal: ThermalModel
    period_s: float = 0.01
    # Between repetitions our firmware busy-polls its UART: the CPU runs, so gaps draw run power.
    gap_utilization: float = 1.0
    _temp_c: float | None = None
    _clock_s: float | None = None

    @property
    def temp_c(self) -> float:
        """Current modelled temperature."""
        return self.thermal.ambient_c if self._temp_c is None else self._temp_c

    @property
    def clock_s(self) -> float:
        """End of the last interval run (0 before the first)."""
        return 0.0 if self._clock_s is None else self._clock_s

    def run(self, intervals: list[Interval]) -> Iterator[ModelSample]:
        """Samples over consecutive intervals; gaps since the last call run at `gap_utilization`."""
        temp = self.temp_c
        for interval in intervals:
            if self._clock_s is not None and interval.start_s > self._clock_s:
                gap_mw = self.power.power_mw(self.gap_utilization)
                temp = self.thermal.settle(temp, gap_mw, interval.start_s - self._clock_s)
            power = self.power.power_mw(interval.utilization)
            steps = math.ceil((interval.end_s - interval.start_s) / self.period_s - 1e-9)
            t = interval.start_s
            for i in range(1, steps + 1):
                t_next = min(interval.start_s + i * self.period_s, interval.end_s)
                temp = self.thermal.settle(temp, power, t_next - t)
                t = t_next
                yield ModelSample(t, power, temp)
            self._clock_s = interval.end_s
        self._temp_c = temp

    def energy_mj(self, interval: Interval) -> float:
        """Energy of one interval: constant power times its duration."""
        return self.power.power_mw(interval.utilization) * (interval.end_s - interval.start_s)
