"""Memory, power, energy and temperature of emulated sessions: the board model and a PPK2 stand-in."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.api import RunOptions, plan_run
from profiler.errors import LinkTimeout
from profiler.power.emulated import EmulatedBoardModel, Interval, PowerModel, ThermalModel
from profiler.power.telemetry import ModelPower
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI
from tests.fakes.ppk2 import RATE_HZ, Waveform

STAND_IN = """
import ast, json, sys
from tests.fakes.ppk2 import FakePPK2, Waveform
pulses = ast.literal_eval(sys.argv[1])
with FakePPK2(Waveform(low_a=0.010, high_a=0.040, period=7_000, high_samples=3_000, pulses=pulses, bit=0)) as f:
    print(f.path, flush=True)
    sys.stdin.read()
    print(json.dumps(f.counters()), flush=True)
"""


def _session_file(out: Path) -> list[dict]:  # type: ignore[type-arg]
    (path,) = [p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl")]
    return read_jsonl(path)


def test_thermal_model_settles_to_ambient_plus_power_times_resistance() -> None:
    thermal = ThermalModel(ambient_c=25.0, resistance_c_per_w=46.0, time_constant_s=20.0)
    assert thermal.settle(25.0, 132.0, 1e6) == pytest.approx(25.0 + 0.132 * 46.0)
    assert thermal.settle(25.0, 132.0, 20.0) == pytest.approx(25.0 + 0.132 * 46.0 * (1 - 2.718281828 ** -1))
    model = EmulatedBoardModel(PowerModel(idle_mw=40.0, active_mw=132.0), thermal, period_s=0.01)
    samples = list(model.run([Interval(0.0, 1.0, 1.0), Interval(3.0, 4.0, 0.5)]))
    assert len(samples) == 200 and samples[0].power_mw == 132.0 and samples[-1].power_mw == 86.0
    assert samples[-1].temp_c > samples[99].temp_c > 25.0  # the gap ran the polling CPU at run power


@pytest.mark.qemu
def test_emulated_run_has_memory_power_temperature_and_energy(tmp_path: Path, firmware_image: object) -> None:
    result = subprocess.run([*CLI, "run", "--device", "stm32", "--model", "demo", "--out", str(tmp_path),
                             "--log-file", str(tmp_path / "logs" / "log.jsonl"), "--json"],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    records = _session_file(tmp_path)
    sources = {(r["kind"], r["source"]) for r in records if r["type"] == "sample"}
    assert sources == {("memory", "device"), ("cpu", "device"), ("power", "model"), ("temperature", "model")}
    cpu = [r["values"] for r in records if r["type"] == "sample" and r["kind"] == "cpu"]
    assert all(c["decode_busy_ticks"] > 0 and 0 < c["decode_utilization_percent"] <= 100 for c in cpu)
    assert summary["peak_ram_bytes"] <= summary["ram_total_bytes"]
    assert summary["power_source"] == "model" and summary["energy_valid"] is True
    # The model draws the STM32F405's run power throughout, so energy per token is power x decode time.
    decode_s = summary["token_latency_ms_p50"] / 1e3
    assert summary["avg_power_mw"] == pytest.approx(132.0)
    assert summary["energy_mj_per_token"] == pytest.approx(132.0 * decode_s, rel=0.05)
    assert 25.0 < summary["max_temp_c"] < 85.0


@pytest.mark.qemu
def test_ina226_read_by_the_emulated_firmware_gives_energy(tmp_path: Path, firmware_image: object) -> None:
    session, path = plan_run(RunOptions(device="stm32", model="demo", out=tmp_path, emulate=True, power="ina226"))
    summary = session.run()
    records = read_jsonl(path)
    power = [r for r in records if r["type"] == "sample" and r["kind"] == "power"]
    assert power and {r["source"] for r in power} == {"ina226-standin"}
    assert summary.power_source == "ina226-standin" and summary.energy_valid, summary.energy_reasons
    assert summary.power_samples_dropped == 0
    # The stand-in's current comes from the board model: 132 mW while computing.
    assert summary.avg_power_mw == pytest.approx(132.0, rel=0.01)
    assert summary.energy_mj_per_token == pytest.approx(132.0 * summary.token_latency_ms_p50 / 1e3, rel=0.05)


@pytest.mark.qemu
def test_over_temperature_is_an_event_and_a_warning(tmp_path: Path, firmware_image: object) -> None:
    session, path = plan_run(RunOptions(device="stm32", model="demo", out=tmp_path, emulate=True, repeat=1,
                                        warmup=0, tokens=8))
    hot = ThermalModel(ambient_c=80.0, resistance_c_per_w=2000.0, time_constant_s=0.05)
    session.target.power = ModelPower(PowerModel(40.0, 132.0), hot, supply_mv=3300)
    session.run()
    records = read_jsonl(path)
    (event,) = [r for r in records if r["type"] == "event"]
    assert event["kind"] == "over_temperature" and "85" in event["message"]
    assert records[-1]["max_temp_c"] > 85.0


@pytest.mark.qemu
def test_ppk2_stand_in_at_full_rate_gives_energy_of_what_it_fed(tmp_path: Path, firmware_image: object) -> None:
    # One sync pulse per repetition (the firmware's decode window as the meter would see it).
    pulses = tuple((i * 40_000 + 5_000, i * 40_000 + 35_000) for i in range(6))
    waveform = Waveform(low_a=0.010, high_a=0.040, period=7_000, high_samples=3_000, pulses=pulses, bit=0)
    # The meter is its own device: the stand-in runs in another process, as a PPK2 runs on its own MCU.
    meter = subprocess.Popen([sys.executable, "-c", STAND_IN, repr(pulses)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert meter.stdout is not None
        port = meter.stdout.readline().strip()
        session, path = plan_run(RunOptions(device="stm32", model="demo", out=tmp_path, emulate=True,
                                            power=f"ppk2:{port}?voltage_mv=3300"))
        summary = session.run()
    finally:
        counters = json.loads(meter.communicate("", timeout=30)[0])
    assert counters["overflowed"] == counters["skipped"] == 0
    assert summary.power_source == "ppk2" and summary.energy_valid is True, summary.energy_reasons
    assert summary.power_samples_dropped == 0
    records = read_jsonl(path)
    reps = [r for r in records if r["type"] == "repetition"]
    decodes = [r for r in records if r["type"] == "phase" and r["name"] == "decode"]
    for rep, decode, (first, end) in zip(reps, decodes, pulses, strict=True):
        tokens = [r["ticks"] for r in records if r["type"] == "token" and r["repetition"] == rep["repetition"]
                  and r["warmup"] == rep["warmup"]]
        # Device ticks -> meter samples through the pulse edges, as the session aligns them.
        scale = (end - first) / (decode["end_ticks"] - decode["start_ticks"])
        t0 = first + (tokens[0] - decode["start_ticks"]) * scale
        t1 = first + (tokens[-1] - decode["start_ticks"]) * scale
        fed_mj = waveform.charge_c(round(t0), round(t1)) * 3.3 * 1e3
        assert rep["energy_mj_per_token"] * (len(tokens) - 1) == pytest.approx(fed_mj, rel=0.01)
        # Each token record carries its own share: the energy fed between it and the token before.
        token_mj = [r["energy_mj"] for r in records if r["type"] == "token" and r["repetition"] == rep["repetition"]
                    and r["warmup"] == rep["warmup"]][1:]
        fed_each = [waveform.charge_c(round(first + (a - decode["start_ticks"]) * scale),
                                      round(first + (b - decode["start_ticks"]) * scale)) * 3.3e3
                    for a, b in itertools.pairwise(tokens)]
        assert token_mj == pytest.approx(fed_each, rel=0.05, abs=1e-3)
    assert RATE_HZ == 100_000


def test_a_meter_without_pulses_fails_the_session_but_keeps_its_tokens(tmp_path: Path, firmware_image: object) -> None:
    # No sync pulse ever: the meter cannot place the decode, the session stops with a link error, and the
    # token records held back for their energy are still written (without it) before the error record.
    meter = subprocess.Popen([sys.executable, "-c", STAND_IN, "()"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert meter.stdout is not None
        port = meter.stdout.readline().strip()
        session, path = plan_run(RunOptions(device="stm32", model="demo", out=tmp_path, emulate=True,
                                            power=f"ppk2:{port}?voltage_mv=3300"))
        with pytest.raises(LinkTimeout, match="no decode pulse"):
            session.run()
    finally:
        meter.communicate("", timeout=30)
    records = read_jsonl(path)
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "failed"
    tokens = [r for r in records if r["type"] == "token"]
    assert len(tokens) == session.settings.tokens and all(t["energy_mj"] is None for t in tokens)
    kinds = [r["type"] for r in records]
    assert kinds.index("error") > max(i for i, kind in enumerate(kinds) if kind == "token")
