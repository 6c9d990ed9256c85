"""A stand-in for a Nordic Power Profiler Kit II on its USB CDC ACM serial port, on a pty.

What it stands for: a PPK2 with Nordic's firmware as the host sees it through
`/dev/ttyACM*`: a byte stream, no modem lines, commands as raw opcode bytes.
Written from the protocol facts in `profiler/power/ppk2.py`'s docstring, with
its own encoder, so the driver is checked against an independent statement of
the format:

- GET_META_DATA (0x19) is answered with a metadata text block (`name: value`
  lines ending in `END`) carrying a full per-range calibration;
  SET_POWER_MODE (0x11 1|2), REGULATOR_SET (0x0D hi lo, millivolts),
  DEVICE_RUNNING_SET (0x0C 0|1), AVERAGE_START (0x06), AVERAGE_STOP (0x07)
  change its state and are logged in `commands`; other opcodes are logged as
  unknown and otherwise ignored.
- While streaming it sends 32-bit little-endian sample words at the full
  100 kS/s, paced by wall time from a thread: ADC in bits 0-13, range in
  14-16, a 6-bit counter in 18-23 (starting at an arbitrary value), logic
  inputs D0-D7 in 24-31. Each word encodes the `Waveform`'s current at that
  sample index through the inverse of the calibration formula, in the
  smallest range that holds it (auto-ranging), so a correct decoder recovers
  the waveform to within one ADC step.
- Like the device, it never blocks on a slow host: samples that do not fit
  its transmit FIFO (`fifo_bytes`, a model parameter, not a measured PPK2
  figure) are discarded while the counter runs on. `skip` discards chosen
  samples on purpose; `go_silent()` stops all output (a hung meter).

What it does not model: USB packet timing and the host cdc_acm driver's
buffers (the pty's kernel buffer, about 4 KB, stands in for them), noise,
range-switch transients and the spike filter they call for, trigger and
averaging commands, logic-level thresholds, the DUT supply actually powering
anything, and RESET re-enumerating the USB device.

Run alone (`python -m tests.fakes.ppk2`) it prints its port path, streams
until stdin closes, then prints its counters as one JSON line.
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

RATE_HZ = 100_000
_ADC_VOLTS_PER_COUNT = 1.8 / 163840  # the front end's ADC scale, per count of (14-bit value * 4)

METADATA = """Calibrated: 1
R0: 1025.4180
R1: 100.8742
R2: 10.0911
R3: 0.9432
R4: 0.0441
GS0: 0.0002
GS1: 0.0013
GS2: 0.0109
GS3: 0.0391
GS4: 0.0520
GI0: 0.9987
GI1: 1.0021
GI2: 0.9963
GI3: 1.0048
GI4: 0.9911
O0: 61.2341
O1: 86.1102
O2: 71.4410
O3: 104.9003
O4: 92.3315
S0: 0.000000018
S1: 0.000000210
S2: 0.000001870
S3: 0.000019500
S4: 0.000201000
I0: -0.000000092
I1: -0.000000810
I2: -0.000007300
I3: -0.000064000
I4: -0.000580000
UG0: 1.00
UG1: 1.00
UG2: 1.00
UG3: 1.00
UG4: 1.00
VDD: 3000
HW: 52320
mode: 2
IA: 56
END
"""


def metadata_values(text: str) -> dict[str, float]:
    """The numeric fields of a metadata block."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            pass
    return out


@dataclass(frozen=True)
class Waveform:
    """A known current: a square wave between `low_a` and `high_a`, plus sync pulses on one logic input.

    Sample i is high when `i % period < high_samples`. `pulses` are
    (first high sample, first low sample) of logic input `bit`.
    """

    low_a: float = 0.004
    high_a: float = 0.035
    period: int = 10_000
    high_samples: int = 5_000
    pulses: tuple[tuple[int, int], ...] = ()
    bit: int = 0

    def current_a(self, index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Amperes at each sample index."""
        return np.where(index % self.period < self.high_samples, self.high_a, self.low_a)

    def logic(self, index: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """Logic input bits at each sample index."""
        bits = np.zeros(len(index), dtype=np.uint8)
        for first, end in self.pulses:
            bits[(index >= first) & (index < end)] |= np.uint8(1 << self.bit)
        return bits

    def _high_before(self, n: int) -> int:
        return (n // self.period) * self.high_samples + min(n % self.period, self.high_samples)

    def charge_c(self, first: int, end: int) -> float:
        """Coulombs fed over samples first..end-1, each held for one sample period (exact)."""
        high = self._high_before(end) - self._high_before(first)
        return (high * self.high_a + (end - first - high) * self.low_a) / RATE_HZ


class Encoder:
    """Currents to sample words through the inverse of the PPK2 calibration formula."""

    def __init__(self, metadata: str) -> None:
        v = metadata_values(metadata)
        self.cal = {key: np.array([v[f"{key}{k}"] for k in range(5)]) for key in ("R", "GS", "GI", "O", "S", "I", "UG")}
        # Full-scale current per range (ADC at its top), for auto-ranging with 10% headroom.
        self._full_scale = [self._current(16383, k, 3.3) for k in range(5)]

    def _current(self, adc: int, k: int, vdd_v: float) -> float:
        c = self.cal
        x = (adc * 4 - c["O"][k]) * _ADC_VOLTS_PER_COUNT / c["R"][k]
        return float(c["UG"][k] * (x * (c["GS"][k] * x + c["GI"][k]) + c["S"][k] * vdd_v + c["I"][k]))

    def words(self, current_a: npt.NDArray[np.float64], vdd_mv: float) -> npt.NDArray[np.uint32]:
        """ADC and range fields (bits 0-16) of the words that read back as `current_a`."""
        rng = np.minimum(np.searchsorted(0.9 * np.array(self._full_scale), current_a), 4)
        c = {k: v[rng] for k, v in self.cal.items()}
        offset = c["S"] * (vdd_mv / 1000.0) + c["I"] - current_a / c["UG"]
        # Root of GS x^2 + GI x + offset = 0 in its cancellation-free form (also right for GS = 0).
        x = -2.0 * offset / (c["GI"] + np.sqrt(c["GI"] ** 2 - 4.0 * c["GS"] * offset))
        adc = np.clip(np.rint((x * c["R"] / _ADC_VOLTS_PER_COUNT + c["O"]) / 4.0), 0, 16383).astype(np.uint32)
        return adc | (rng.astype(np.uint32) << 14)


_COMMAND_LENGTHS = {0x06: 1, 0x07: 1, 0x0C: 2, 0x0D: 3, 0x11: 2, 0x15: 1, 0x16: 1, 0x19: 1, 0x20: 1, 0x25: 6}


class FakePPK2:
    """The stand-in on a pty; `path` is the port to open. Use as a context manager."""

    def __init__(self, waveform: Waveform | None = None, *, metadata: str = METADATA, counter_start: int = 37,
                 skip: Sequence[tuple[int, int]] = (), fifo_bytes: int = 65536, answer_metadata: bool = True,
                 supply_mv: int = 3300) -> None:
        self.waveform = waveform or Waveform()
        self.metadata = metadata
        self.encoder = Encoder(metadata)
        self.counter_start = counter_start
        self.skip = tuple(skip)
        self.fifo_bytes = fifo_bytes
        self.answer_metadata = answer_metadata
        self.supply_mv = supply_mv  # the board's supply in ampere mode (the PPK2 does not set it)
        self.mode: str | None = None
        self.regulator_mv = int(metadata_values(metadata).get("VDD", 3000))
        self.dut_power = False
        self.streaming = False
        self.commands: list[tuple[int, ...]] = []
        self.unknown: list[int] = []
        self.generated = 0  # sample indices produced since AVERAGE_START (sent, skipped or overflowed)
        self.sent = 0
        self.skipped = 0
        self.overflowed = 0
        self._silent = False
        self._out = bytearray()
        self._rx = b""
        self._t0 = 0.0
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-ppk2", daemon=True)
        self._thread.start()

    # -- test controls -----------------------------------------------------------------

    @property
    def vdd_mv(self) -> int:
        """The supply the board sees: the regulator in source mode, the board's own supply otherwise."""
        return self.regulator_mv if self.mode == "source" else self.supply_mv

    def go_silent(self) -> None:
        """Stop sending anything, as a hung or unplugged meter would."""
        self._silent = True

    def sent_charge_c(self, first: int, end: int) -> float:
        """Coulombs of the waveform over sample indices first..end-1 (what was fed, exactly)."""
        return self.waveform.charge_c(first, end)

    def counters(self) -> dict[str, Any]:
        """Generated, sent, skipped and overflowed samples."""
        return {"generated": self.generated, "sent": self.sent, "skipped": self.skipped,
                "overflowed": self.overflowed, "mode": self.mode, "vdd_mv": self.vdd_mv,
                "unknown_opcodes": self.unknown}

    def close(self) -> None:
        """Stop the thread and close both ends of the pty."""
        self._closed.set()
        self._thread.join(2.0)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> FakePPK2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the device --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.001)
                if ready:
                    self._command(os.read(self.master, 4096))
            except OSError:
                time.sleep(0.001)  # no reader on the slave side yet, or it just closed
            if self.streaming and not self._silent:
                self._produce()
            if self._out and not self._silent:
                self._flush()

    def _command(self, data: bytes) -> None:
        self._rx += data
        while self._rx:
            op = self._rx[0]
            length = _COMMAND_LENGTHS.get(op)
            if length is None:
                self.unknown.append(op)
                self._rx = self._rx[1:]
                continue
            if len(self._rx) < length:
                return
            cmd, self._rx = tuple(self._rx[:length]), self._rx[length:]
            self.commands.append(cmd)
            if op == 0x19 and self.answer_metadata:
                self._out += self.metadata.encode()
            elif op == 0x11:
                self.mode = {1: "ampere", 2: "source"}.get(cmd[1], self.mode)
            elif op == 0x0D:
                self.regulator_mv = (cmd[1] << 8) | cmd[2]
            elif op == 0x0C:
                self.dut_power = bool(cmd[1])
            elif op == 0x06:
                self.streaming, self.generated, self._t0 = True, 0, time.monotonic()
            elif op == 0x07:
                self.streaming = False

    def _produce(self) -> None:
        due = int((time.monotonic() - self._t0) * RATE_HZ)
        while self.generated < due:
            first = self.generated
            end = min(due, first + 10_000)
            index = np.arange(first, end, dtype=np.int64)
            keep = np.ones(len(index), dtype=bool)
            for at, count in self.skip:
                keep &= (index < at) | (index >= at + count)
            self.skipped += int(len(index) - np.count_nonzero(keep))
            index = index[keep]
            words = self.encoder.words(self.waveform.current_a(index), self.vdd_mv)
            words |= (((index + self.counter_start) % 64).astype(np.uint32) << 18)
            words |= self.waveform.logic(index).astype(np.uint32) << 24
            room = max(0, (self.fifo_bytes - len(self._out)) // 4)
            if room < len(words):
                self.overflowed += len(words) - room
                words = words[:room]
            self._out += words.astype("<u4").tobytes()
            self.sent += len(words)
            self.generated = end

    def _flush(self) -> None:
        try:
            n = os.write(self.master, self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        del self._out[:n]


def _main() -> int:
    # Standalone for benchmarks: the host side runs in another process, so its CPU is its own.
    # stdin: the number of samples the host kept; the last line answers with what was fed up to there,
    # so the benchmark needs nothing of this module but its process.
    with FakePPK2(Waveform(pulses=((100_000, 200_000),))) as fake:
        print(fake.path, flush=True)
        kept = sys.stdin.read().split()
        counters: dict[str, Any] = {**fake.counters(), "sync_bit": fake.waveform.bit}
        if kept:
            counters["charge_c"] = fake.waveform.charge_c(0, int(kept[0]))
        print(json.dumps(counters), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
