"""The PPK2 driver: sample-word decoding, then the real driver against a fake PPK2 on a pty at the full 100 kS/s
(tests/fakes/ppk2.py): zero drops, energy against the fed waveform, counted drops, source mode, sync edges,
and the failures (missing port, silent meter, host buffer overflow)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from profiler.errors import ConfigError, LinkError, LinkTimeout
from profiler.power import PowerBatch, open_meter
from profiler.power.energy import energy_mj, sync_windows
from profiler.power.ppk2 import (
    Calibration,
    Ppk2Meter,
    StreamDecoder,
    parse_metadata,
    regulator_command,
    split_words,
)
from tests.fakes.ppk2 import METADATA, FakePPK2, Waveform

RATE = 100_000


def word(adc: int, rng: int, counter: int = 0, logic: int = 0) -> int:
    return adc | (rng << 14) | (counter << 18) | (logic << 24)


def words_bytes(values: list[int]) -> bytes:
    return np.array(values, dtype="<u4").tobytes()


# -- decoding, no device ------------------------------------------------------------------------


def test_word_fields() -> None:
    w = split_words(np.array([(0xA5 << 24) | (42 << 18) | (1 << 17) | (3 << 14) | 0x1234], dtype=np.uint32))
    assert (int(w.adc[0]), int(w.range[0]), int(w.counter[0]), int(w.logic[0])) == (0x1234, 3, 42, 0xA5)


def test_known_words_decode_per_range() -> None:
    # ADC 1000 -> 4000 * 1.8 / 163840 V = 0.0439453125 V across each range's resistor.
    plain = Calibration(r=(1000.0, 100.0, 10.0, 1.0, 0.05), gs=(0.0,) * 5, gi=(1.0,) * 5, o=(0.0,) * 5,
                        s=(0.0,) * 5, i=(0.0,) * 5, ug=(1.0,) * 5)
    decoder = StreamDecoder(plain, vdd_mv=3300)
    batch = decoder.feed(words_bytes([word(1000, r, counter=r) for r in range(5)]), 0)
    assert batch is not None
    assert list(batch.current_a) == pytest.approx([4.39453125e-5, 4.39453125e-4, 4.39453125e-3, 0.0439453125,
                                                   0.87890625], rel=1e-12)
    # Every calibration term at once, range 2: x = (32000 - 100) * 1.8/163840 / 10 = 0.03504638671875 A,
    # I = 1.01 * (x * (0.5 x + 0.98) + 2e-6 * 3.3 - 1e-5).
    full = Calibration(r=(1.0, 1.0, 10.0, 1.0, 1.0), gs=(0.0, 0.0, 0.5, 0.0, 0.0), gi=(1.0, 1.0, 0.98, 1.0, 1.0),
                       o=(0.0, 0.0, 100.0, 0.0, 0.0), s=(0.0, 0.0, 2e-6, 0.0, 0.0), i=(0.0, 0.0, -1e-5, 0.0, 0.0),
                       ug=(1.0, 1.0, 1.01, 1.0, 1.0))
    batch = StreamDecoder(full, vdd_mv=3300).feed(words_bytes([word(8000, 2, logic=0x81)]), 0)
    assert batch is not None
    assert float(batch.current_a[0]) == pytest.approx(0.03530574543134904, rel=1e-12)
    assert int(batch.logic[0]) == 0x81 and float(batch.voltage_v[0]) == 3.3


def test_counter_gaps_become_index_gaps_and_drops() -> None:
    decoder = StreamDecoder(Calibration(), vdd_mv=3000)
    counters = [62, 63, 0, 1, 5, 6, 6 + 20]  # wraps at 64; 3 missing before 5; 19 before 26
    first = decoder.feed(words_bytes([word(100, 1, c) for c in counters[:3]]) + b"\x01\x02", 0)
    second = decoder.feed(words_bytes([word(100, 1, c) for c in counters[3:]])[2:], 0)  # the word split across reads
    assert first is not None and second is not None
    both = PowerBatch.concat([first, second])
    assert list(np.rint(both.t_s * RATE)) == [0, 1, 2, 3, 7, 8, 28]
    assert both.dropped == decoder.lost == 22 and decoder.received == 7


def test_corrupt_words_are_left_out_and_counted_as_lost() -> None:
    decoder = StreamDecoder(Calibration(), vdd_mv=3000)
    batch = decoder.feed(words_bytes([word(100, 1, 0), word(100, 7, 1), word(100, 1, 2)]), 0)
    assert batch is not None and len(batch) == 2
    assert (decoder.corrupt, decoder.lost) == (1, 1)


def test_stream_starting_mid_word_is_realigned() -> None:
    stream = words_bytes([word(200 + k, 1, k % 64) for k in range(300)])
    decoder = StreamDecoder(Calibration(), vdd_mv=3000)
    batch = decoder.feed(stream[3:], 0)  # joined one byte before a word boundary
    assert batch is not None and len(batch) == 299 and decoder.lost == 0


def test_a_lost_byte_mid_stream_is_resynchronised() -> None:
    stream = words_bytes([word(200, 1, k % 64) for k in range(1000)])
    decoder = StreamDecoder(Calibration(), vdd_mv=3000)
    decoder.feed(stream[:2000], 0)
    decoder.feed(stream[2001:], 0)  # byte 2000 vanished: word 500 is broken
    assert decoder.resyncs == 1
    assert decoder.received == 999 and decoder.lost == 1


def test_metadata_text() -> None:
    cal = parse_metadata(METADATA)
    assert cal.calibrated is True
    assert cal.r == (1025.418, 100.8742, 10.0911, 0.9432, 0.0441)
    assert cal.o[3] == 104.9003 and cal.s[4] == 0.000201 and cal.i[0] == -0.000000092
    assert cal.fields["HW"] == "52320"
    odd = parse_metadata("Calibrated: 0\nR0: 0\nR1: -nan\nGI2: 0.97\nEND\n")
    assert odd.calibrated is False
    assert odd.r[:2] == Calibration().r[:2]  # a zero or -nan value keeps the default
    assert odd.gi[2] == 0.97


def test_regulator_command_carries_millivolts() -> None:
    assert regulator_command(3300) == bytes([0x0D, 0x0C, 0xE4])
    assert regulator_command(800) == bytes([0x0D, 0x03, 0x20])
    with pytest.raises(ConfigError, match=r"outside 800\.\.5000"):
        regulator_command(5001)


# -- the driver against the fake PPK2 -------------------------------------------------------------------


def capture(meter: Ppk2Meter, seconds: float) -> PowerBatch:
    batches = []
    meter.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batches.append(meter.read(timeout_s=0.05))
    meter.stop()
    batches.append(meter.read())
    return PowerBatch.concat(batches)


def test_full_rate_capture_loses_nothing_and_integrates_the_fed_waveform() -> None:
    with FakePPK2() as fake, open_meter(f"ppk2:{fake.path}?voltage_mv={fake.supply_mv}") as meter:
        assert isinstance(meter, Ppk2Meter)
        info = meter.configure()
        started = time.monotonic()
        batch = capture(meter, 3.0)
        elapsed = time.monotonic() - started
        stats = meter.stats
    assert (info.mode, info.voltage_mv, info.sample_rate_hz, info.calibrated) == ("ampere", 3300, 1e5, True)
    assert fake.mode == "ampere" and fake.dut_power and fake.commands[0] == (0x07,)
    assert stats.dropped == 0 and batch.dropped == 0 and fake.overflowed == 0
    assert stats.received == len(batch) == fake.sent
    assert len(batch) >= 0.9 * RATE * 3.0 and len(batch) <= RATE * elapsed  # the full rate, paced by wall time
    assert np.array_equal(np.rint(batch.t_s * RATE), np.arange(len(batch)))
    fed_mj = fake.sent_charge_c(0, len(batch) - 1) * fake.supply_mv  # C * mV = mJ
    measured_mj = energy_mj(batch)
    assert measured_mj == pytest.approx(fed_mj, rel=0.01)
    assert measured_mj == pytest.approx(fed_mj, rel=1e-3)  # in fact within one ADC step per range


def test_source_mode_sets_the_regulator_and_powers_the_board() -> None:
    wave = Waveform(low_a=0.0002, high_a=0.12, period=2_000, high_samples=500)  # 200 uA to 120 mA: three ranges
    with FakePPK2(wave) as fake, open_meter(f"ppk2:{fake.path}?mode=source&voltage_mv=1800") as meter:
        info = meter.configure()
        batch = capture(meter, 1.0)
    assert info.mode == "source" and fake.mode == "source" and fake.regulator_mv == 1800 and fake.dut_power
    assert (0x0D, 0x07, 0x08) in fake.commands
    assert meter.stats.dropped == 0
    fed_mj = fake.sent_charge_c(0, len(batch) - 1) * 1800
    assert energy_mj(batch) == pytest.approx(fed_mj, rel=1e-3)
    high = batch.current_a[np.rint(batch.t_s * RATE).astype(int) % 2000 < 500]
    assert float(np.median(high)) == pytest.approx(0.12, rel=1e-3)


def test_samples_the_meter_skipped_are_counted_and_leave_gaps() -> None:
    skip = [(20_000, 5), (90_000, 40)]
    with FakePPK2(skip=skip) as fake, open_meter(f"ppk2:{fake.path}?voltage_mv=3300") as meter:
        meter.configure()
        batch = capture(meter, 1.2)
    assert fake.skipped == 45
    assert meter.stats.lost_in_transfer == 45 and batch.dropped == 45 and meter.stats.lost_in_host == 0
    index = np.rint(batch.t_s * RATE).astype(int)
    assert 20_000 not in index and 20_004 not in index and 20_005 in index and 19_999 in index
    assert set(range(90_000, 90_040)).isdisjoint(index) and 90_040 in index
    assert len(batch) == index[-1] + 1 - 45


def test_sync_marker_window_and_its_energy() -> None:
    wave = Waveform(pulses=((50_000, 150_000), (180_000, 190_000)), bit=3)
    with FakePPK2(wave) as fake, open_meter(f"ppk2:{fake.path}?voltage_mv=3300") as meter:
        meter.configure()
        batch = capture(meter, 2.2)
    windows = sync_windows(batch, bit=3)
    assert [(w.start_s * RATE, w.end_s * RATE) for w in windows] == [
        pytest.approx((49_999.5, 149_999.5)), pytest.approx((179_999.5, 189_999.5))]
    fed_mj = fake.sent_charge_c(50_000, 150_000) * 3300
    assert energy_mj(batch, windows[0].start_s, windows[0].end_s) == pytest.approx(fed_mj, rel=1e-3)


def test_host_buffer_overflow_drops_the_oldest_and_says_so() -> None:
    with FakePPK2() as fake, open_meter(f"ppk2:{fake.path}?voltage_mv=3300&buffer_s=0.1") as meter:
        meter.configure()
        meter.start()
        time.sleep(0.6)  # nobody reads: the 10,000-sample buffer overflows
        meter.stop()
        batch = meter.read()
        stats = meter.stats
    assert stats.lost_in_transfer == 0 and stats.lost_in_host > 30_000
    assert len(batch) + stats.lost_in_host == stats.received == fake.sent
    assert batch.dropped == stats.lost_in_host
    assert np.rint(batch.t_s[0] * RATE) == stats.lost_in_host  # what is left is the newest, at its true time


def test_a_missing_port_is_a_link_error() -> None:
    with pytest.raises(LinkError, match="cannot open /dev/ttyPPK2-missing"):
        open_meter("ppk2:/dev/ttyPPK2-missing?voltage_mv=3300").configure()


def test_a_port_that_does_not_answer_the_metadata_request() -> None:
    with FakePPK2(answer_metadata=False) as fake, open_meter(f"ppk2:{fake.path}?voltage_mv=3300") as meter:
        with pytest.raises(LinkTimeout, match="did not answer the metadata request"):
            meter.configure()


def test_a_meter_that_goes_silent_while_streaming() -> None:
    with FakePPK2() as fake, open_meter(f"ppk2:{fake.path}?voltage_mv=3300&silence_s=0.3") as meter:
        meter.configure()
        meter.start()
        time.sleep(0.3)
        fake.go_silent()
        time.sleep(0.5)
        delivered = meter.read()  # what came before the silence is handed out first
        assert len(delivered) > 10_000
        with pytest.raises(LinkTimeout, match=r"sent nothing for 0\.3 s"):
            meter.read(timeout_s=1.0)
