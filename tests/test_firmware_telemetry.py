"""The firmware's telemetry on real QEMU boards, straight over the wire protocol (no session).

Each emulated board runs the real firmware: CPU frames must add up to the phase ticks, TEMP frames
appear where the port has a sensor, POWER frames arrive only when RUN asks for them, read by the
firmware's own INA driver from the INA226 stand-in (ports/common/ina226_standin.c) and its
documented board power model, and two identical RUNs give bit-identical token ticks with and
without POWER streaming.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from platforms import adapter_for
from platforms.boards import resolve_board
from profiler.firmware import FirmwareImage, ensure_firmware
from profiler.link import protocol as p
from profiler.link.transport import SerialLink, open_serial

pytestmark = pytest.mark.qemu
DEMO = Path(__file__).resolve().parent.parent / "profiler" / "bundled" / "demo.tpm"
PROMPT = [1, 403, 89, 12]

# (board, firmware port, has a temperature sensor, has a sync pin, stand-in power in uW at 3300 mV)
Case = tuple[str, str, bool, bool, int]
Board = tuple[SerialLink, p.Hello, Case]
BOARDS: list[Case] = [("stm32f405", "stm32f4", True, True, 132_000), ("riscv", "riscv-virt", False, False, 99_750),
                       ("m7", "mps2-an500", False, False, 396_000), ("m55", "mps3-an547", False, False, 330_000)]


@pytest.fixture(scope="module", params=BOARDS, ids=[b[0] for b in BOARDS])
def board(request: pytest.FixtureRequest) -> Iterator[Board]:
    name, port, *_ = request.param
    profile = resolve_board(name)
    adapter = adapter_for(profile)
    image: FirmwareImage = ensure_firmware(port)
    emulator = adapter.emulate(profile, image.elf, DEMO)
    emulator.start()
    try:
        link = SerialLink(open_serial(emulator.url, profile.baud, connect_timeout_s=5.0), emulator.url)
        hello = next(e.hello for e in link.events(30, "HELLO") if isinstance(e, p.Boot))
        yield link, hello, request.param
        link.close()
    finally:
        emulator.close()


def _run(link: SerialLink, rep: int, flags: int | None, period_us: int = 0, tokens: int = 6) -> list[p.Event]:
    link.send(p.MsgType.RUN, p.run_payload(rep, tokens, 0.0, 42, PROMPT, flags, period_us))
    events: list[p.Event] = []
    for event in link.events(120, f"RUN {rep}"):
        events.append(event)
        if isinstance(event, p.Done | p.DeviceError):
            return events
    raise AssertionError("unreachable")


def _of(events: list[p.Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_capabilities_and_cpu_frames_add_up_to_the_phases(board: Board) -> None:
    link, hello, (_, _, has_temp, has_sync, _) = board
    caps = p.Capability(hello.capabilities)
    assert p.Capability.CPU_SAMPLES in caps and p.Capability.INA in caps
    assert (p.Capability.TEMP_SENSOR in caps) == has_temp and (p.Capability.SYNC_PIN in caps) == has_sync
    events = _run(link, 0, None)
    phases = {e.phase: e.ticks for e in _of(events, p.Phase)}
    cpu = {e.phase: e for e in _of(events, p.CpuUsage)}
    assert set(cpu) == {p.CpuPhase.PREFILL, p.CpuPhase.DECODE}
    for phase, start, end in ((p.CpuPhase.PREFILL, p.PhaseMark.PREFILL_START, p.PhaseMark.PREFILL_END),
                              (p.CpuPhase.DECODE, p.PhaseMark.DECODE_START, p.PhaseMark.DECODE_END)):
        assert cpu[phase].busy_ticks + cpu[phase].wait_ticks == phases[end] - phases[start]
        assert cpu[phase].wait_ticks == 0  # QEMU's UART never makes the CPU wait
    temps = _of(events, p.Temperature)
    assert len(temps) == (2 if has_temp else 0)
    if temps:
        assert temps[0].ticks < phases[p.PhaseMark.PREFILL_START] < phases[p.PhaseMark.DECODE_END] < temps[1].ticks
        assert all(t.source == p.TempSource.ONCHIP for t in temps)
    assert not _of(events, p.PowerReading)
    assert _of(events, p.Done)[0].status == 0


def test_power_frames_come_only_when_asked_and_repetitions_stay_bit_identical(board: Board) -> None:
    link, hello, (*_, model_uw) = board
    runs = {flags: [_run(link, 10 + 2 * i + k, flags, 1000) for k in range(2)]
            for i, flags in enumerate((None, p.RUN_FLAG_POWER, 0))}
    for flags, (a, b) in runs.items():
        ticks_a = [t.ticks - _of(a, p.Phase)[0].ticks for t in _of(a, p.Token)]
        ticks_b = [t.ticks - _of(b, p.Phase)[0].ticks for t in _of(b, p.Token)]
        assert ticks_a == ticks_b, f"flags {flags}: identical RUNs differ"
        assert [t.token_id for t in _of(a, p.Token)] == [t.token_id for t in _of(runs[None][0], p.Token)]
        assert bool(_of(a, p.PowerReading)) == (flags == p.RUN_FLAG_POWER)
    power = _of(runs[p.RUN_FLAG_POWER][0], p.PowerReading)
    phases = {e.phase: e.ticks for e in _of(runs[p.RUN_FLAG_POWER][0], p.Phase)}
    offsets = [s.ticks - phases[p.PhaseMark.PREFILL_START] for s in power]
    period = hello.timer_hz // 1000
    assert all(abs(b - a - period) <= 1 for a, b in itertools.pairwise(offsets))
    assert abs(offsets[0] - period) <= period // 100 and power[-1].ticks <= phases[p.PhaseMark.DECODE_END]
    span = phases[p.PhaseMark.DECODE_END] - phases[p.PhaseMark.PREFILL_START]
    assert len(power) == span // period and sum(s.dropped for s in power) == 0
    assert {(s.chip, s.bus_mv, s.power_uw) for s in power} == {(p.InaChip.INA226, 3300, model_uw)}
    assert power[0].current_ua == pytest.approx(model_uw / 3.3, rel=0.01)
    # streaming costs time, and says so: the same tokens, later
    assert _of(runs[p.RUN_FLAG_POWER][0], p.Token)[-1].ticks - phases[p.PhaseMark.PREFILL_START] > (
        _of(runs[None][0], p.Token)[-1].ticks - _of(runs[None][0], p.Phase)[0].ticks
    )


def test_run_lengths_and_bad_sample_periods(board: Board) -> None:
    link, *_ = board
    base = p.run_payload(30, 2, 0.0, 1, PROMPT)
    for payload in (base + b"\x01", base + b"\x01\x10\x27\x00"):  # 1 and 4 trailing bytes
        link.send(p.MsgType.RUN, payload)
        error = next(e for e in link.events(30, "ERROR") if isinstance(e, p.DeviceError | p.Done))
        assert isinstance(error, p.DeviceError) and error.code == 2
    events = _run(link, 31, p.RUN_FLAG_POWER, 50)  # below the emulated boards' 100 us
    assert isinstance(events[-1], p.DeviceError) and events[-1].code == 5 and not _of(events, p.Phase)
    events = _run(link, 32, p.RUN_FLAG_POWER, 0)  # 0: the default 10 ms
    assert _of(events, p.PowerReading) and isinstance(events[-1], p.Done)
