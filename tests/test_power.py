"""Power meter layer without an instrument: specs, registry, batches, the bounded buffer, energy and alignment."""

from __future__ import annotations

import numpy as np
import pytest

from profiler.errors import ConfigError, ToolMissing
from profiler.power import MeterStats, PowerBatch, PowerSample, open_meter, parse_spec, register, registered_kinds
from profiler.power.base import BatchQueue, PowerMeter
from profiler.power.energy import (
    MAX_DROP_FRACTION,
    TickMap,
    average_power_mw,
    drop_reason,
    edges,
    energy_mj,
    energy_per_token,
    peak_power_mw,
    sync_windows,
)

# -- specs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "address", "options"), [
    ("ppk2:/dev/ttyACM1", "ppk2", "/dev/ttyACM1", ()),
    ("ppk2:/dev/ttyACM1?mode=source&voltage_mv=3300", "ppk2", "/dev/ttyACM1",
     (("mode", "source"), ("voltage_mv", "3300"))),
    ("ppk2?voltage_mv=1800", "ppk2", None, (("voltage_mv", "1800"),)),
    ("ina226", "ina226", None, ()),
    ("ina219", "ina219", None, ()),
    ("joulescope", "joulescope", None, ()),
    ("joulescope:002345", "joulescope", "002345", ()),
    ("model", "model", None, ()),
    ("ppk2:rfc2217://lab-3:4001", "ppk2", "rfc2217://lab-3:4001", ()),
])
def test_spec_parses(text: str, kind: str, address: str | None, options: tuple[tuple[str, str], ...]) -> None:
    spec = parse_spec(text)
    assert (spec.kind, spec.address, spec.options, spec.text) == (kind, address, options, text)


@pytest.mark.parametrize("text", [
    "", "PPK2:/dev/ttyACM1", ":/dev/ttyACM1", "ppk2:", "ppk2:/dev/ttyACM1?mode", "ppk2:/dev/x?mode=",
    "ppk2:/dev/x?mode=source&mode=ampere", "ppk2:/dev/x?Mode=source", "9ppk2",
])
def test_bad_spec_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="power meter"):
        parse_spec(text)


@pytest.mark.parametrize(("text", "message"), [
    ("ppk2:/dev/x?mode=smu&voltage_mv=3300", "mode=smu must be one of ampere, source"),
    ("ppk2:/dev/x?voltage_mv=12000", "voltage_mv=12000 must be an integer from 800 to 5000"),
    ("ppk2:/dev/x?voltage_mv=3.3", "voltage_mv=3.3 must be an integer"),
    ("ppk2:/dev/x?voltage=3300", "unknown option 'voltage'"),
    ("nosuchmeter:/dev/x", "no power meter of kind 'nosuchmeter'; available: .*joulescope.*ppk2"),
])
def test_bad_options_and_kinds_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_meter(text)


def test_ppk2_needs_a_voltage_before_touching_any_port() -> None:
    meter = open_meter("ppk2:/dev/nonexistent-port")
    with pytest.raises(ConfigError, match=r"needs the board's supply voltage: .*voltage_mv=3300"):
        meter.configure()
    with pytest.raises(ConfigError, match="needs the voltage to supply"):
        meter.configure(mode="source")


def test_registry_refuses_a_second_class_for_a_kind() -> None:
    assert {"ppk2", "joulescope"} <= set(registered_kinds())

    class Other(PowerMeter):
        kind = "ppk2"

    with pytest.raises(ValueError, match="registered twice"):
        register(Other)


def test_joulescope_without_its_library_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "joulescope" else real(name, *a))
    with pytest.raises(ToolMissing, match="pip install joulescope"):
        open_meter("joulescope:002345")


def test_joulescope_copier_counts_missing_and_overwritten_samples() -> None:
    from profiler.power.joulescope import _Copier

    class Ring:  # the library's stream buffer, as far as the copier uses it
        def __init__(self) -> None:
            self.sample_id_range = (1000, 1010)

        def samples_get(self, start: int, stop: int, fields: list[str]) -> dict:  # type: ignore[type-arg]
            ids = np.arange(start, stop)
            current = np.where(ids == 1003, np.nan, 0.01)
            return {"signals": {"current": {"value": current}, "voltage": {"value": np.full(len(ids), 3.3)},
                                "current_lsb": {"value": (ids >= 1005).astype(np.uint8)},
                                "voltage_lsb": {"value": np.zeros(len(ids), dtype=np.uint8)}}}

    queue = BatchQueue(1_000_000)
    copier = _Copier(queue, 1_000_000.0)
    ring = Ring()
    copier.stream_notify(ring)
    ring.sample_id_range = (1030, 1040)  # the ring moved past 1010..1029 before we were called again
    copier.stream_notify(ring)
    batch = queue.take()
    assert (copier.received, copier.lost) == (19, 21)
    assert batch.dropped == 21
    assert batch.t_s[0] == 0.0 and batch.t_s[-1] == pytest.approx(39e-6)
    assert 3e-6 not in batch.t_s
    assert list(batch.logic[:8]) == [0, 0, 0, 0, 1, 1, 1, 1]  # 1003 is missing: 1005 is the 5th sample kept


# -- batches and the bounded buffer ---------------------------------------------------------------


def _batch(t: np.ndarray, watts: np.ndarray | float, logic: np.ndarray | None = None, dropped: int = 0) -> PowerBatch:
    current = np.broadcast_to(np.asarray(watts, dtype=np.float64), t.shape)
    return PowerBatch.constant_voltage(t, current.copy(), 1.0, logic, dropped)


def test_batches_are_read_only_and_consistent() -> None:
    b = PowerBatch.constant_voltage(np.arange(4) / 10, np.full(4, 0.01), 3.3, dropped=2, host_ns=5)
    with pytest.raises(ValueError):
        b.current_a[0] = 1.0
    with pytest.raises(ValueError, match="current_a has 3 samples, t_s has 4"):
        PowerBatch(np.arange(4.0), np.zeros(3), np.zeros(4), np.zeros(4, dtype=np.uint8))
    assert b.power_mw[0] == pytest.approx(33.0)
    assert b.sample(1) == PowerSample(0.1, 0.01, 3.3, 0)
    joined = PowerBatch.concat([b, PowerBatch.from_samples([PowerSample(0.4, 0.02, 3.3, 1)], dropped=1, host_ns=9)])
    assert len(joined) == 5 and joined.dropped == 3 and joined.host_ns == 9 and joined.logic[-1] == 1
    assert len(joined.window(0.1, 0.3)) == 3


def test_queue_overflow_drops_the_oldest_and_counts_it() -> None:
    queue = BatchQueue(capacity_samples=130)
    for k in range(3):
        queue.put(_batch(np.arange(k * 60, k * 60 + 60) / 1e5, 1.0, dropped=1))
    batch = queue.take()
    assert queue.lost == 60
    assert len(batch) == 120 and batch.t_s[0] == pytest.approx(60 / 1e5)
    assert batch.dropped == 60 + 3  # the overflowed samples and every counter gap, including the lost batch's
    assert len(queue.take()) == 0 and queue.take().dropped == 0


# -- energy ---------------------------------------------------------------------------------------


def test_energy_is_the_trapezoid_with_interpolated_window_ends() -> None:
    t = np.arange(0, 1001) / 1000.0  # 1 s at 1 kS/s
    ramp = _batch(t, t * 0.5)  # 0..0.5 W linear: 250 mJ over the second
    assert energy_mj(ramp) == pytest.approx(250.0)
    assert energy_mj(ramp, 0.2505, 0.7505) == pytest.approx(0.5 * 0.5 * (0.7505**2 - 0.2505**2) * 1e3)
    assert average_power_mw(ramp, 0.0, 0.5) == pytest.approx(125.0)
    assert peak_power_mw(ramp, 0.1, 0.3) == pytest.approx(150.0)
    with pytest.raises(ValueError, match="not inside"):
        energy_mj(ramp, -0.1, 0.5)


def test_a_gap_of_dropped_samples_is_bridged_by_a_straight_line() -> None:
    t = np.concatenate([np.arange(0, 100), np.arange(150, 200)]) / 1000.0
    flat = _batch(t, 2.0)
    assert energy_mj(flat) == pytest.approx(2.0 * 0.199 * 1e3)


def test_sync_windows_and_edges() -> None:
    logic = np.zeros(1000, dtype=np.uint8)
    logic[100:300] |= 0b100
    logic[500:520] |= 0b100
    logic[700:701] |= 0b100  # a 1-sample glitch
    logic[900:] |= 0b100  # still high at the end: incomplete
    logic[0:50] |= 0b001  # another input
    b = _batch(np.arange(1000) / 1e5, 1.0, logic)
    rising, falling = edges(b, 2)
    assert list(np.round(rising * 1e5, 2)) == [99.5, 499.5, 699.5, 899.5]
    assert list(np.round(falling * 1e5, 2)) == [299.5, 519.5, 700.5]
    windows = sync_windows(b, 2, min_width_s=5e-5)
    assert [(round(w.start_s * 1e5, 1), round(w.end_s * 1e5, 1)) for w in windows] == [(99.5, 299.5), (499.5, 519.5)]
    assert windows[0].duration_s == pytest.approx(200e-5)
    assert len(sync_windows(b, 2)) == 3
    assert sync_windows(b, 0) == []  # high from the first sample: no complete pulse


def test_tick_map_fits_markers_and_recovers_the_device_clock() -> None:
    timer_hz = 168_000_000 * (1 + 40e-6)  # a board crystal 40 ppm fast, as the meter's clock sees it
    base = 2**40  # 64-bit tick counts far from 0
    ticks = [base + k for k in (0, 84_000_000, 200_000_000, 330_000_000)]
    meter = [0.25 + (k - base) / timer_hz for k in ticks]
    tick_map = TickMap.fit(ticks, meter)
    assert tick_map.timer_hz() == pytest.approx(timer_hz, rel=1e-9)
    assert tick_map.max_residual_s < 1e-9
    assert tick_map.meter_s(base + 168_000_000) == pytest.approx(0.25 + 168_000_000 / timer_hz, abs=1e-9)
    with pytest.raises(ValueError):
        TickMap.fit([5], [0.1])


def test_energy_per_token_follows_the_decode_rate_convention() -> None:
    t = np.arange(0, 100_001) / 1e5  # 1 s at 100 kS/s
    watts = np.where(t < 0.5, 0.1, 0.3)
    b = _batch(t, watts)
    tokens = [0.2, 0.4, 0.6, 0.8]
    te = energy_per_token(b, tokens, start_s=0.1)
    assert te.per_token_mj[0] == pytest.approx(20.0)
    assert te.per_token_mj[1] == pytest.approx(0.1 * 0.1e3 + 0.1 * 0.3e3, rel=1e-4)
    assert te.per_token_mj[2] == pytest.approx(60.0)
    assert te.mj_per_token == pytest.approx(te.decode_mj / 3)
    assert te.avg_power_mw == pytest.approx(te.decode_mj / 0.6)
    assert te.peak_power_mw == pytest.approx(300.0)
    assert te.prefill_mj == pytest.approx(10.0)
    with pytest.raises(ValueError, match="increase"):
        energy_per_token(b, [0.3, 0.2])


def test_drop_reason_applies_the_one_in_a_thousand_rule() -> None:
    assert MAX_DROP_FRACTION == 0.001
    assert drop_reason(MeterStats(received=100_000, lost_in_transfer=100)) is None
    reason = drop_reason(MeterStats(received=100_000, lost_in_transfer=90, lost_in_host=30))
    assert reason is not None and "120 of 100,090 samples" in reason and "30 in the host buffer" in reason
