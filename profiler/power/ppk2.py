"""Nordic Power Profiler Kit II over its USB CDC ACM serial port, speaking its protocol directly.

Why not `ppk2-api` (0.9.2, read for the facts below): it converts one sample
at a time in Python (100,000 calls a second), its reader thread throws old
data away without counting it, it ignores the sample counter so lost samples
go unnoticed, and its serial errors are logged, not raised. We need every
loss counted and the whole stream decoded with a few numpy operations.

Protocol facts (from Nordic's pc-nrfconnect-ppk serial device and ppk2-api):

- Commands are raw bytes, unanswered except GET_META_DATA (0x19):
  AVERAGE_START 0x06 and AVERAGE_STOP 0x07 start/stop the stream,
  SET_POWER_MODE 0x11 + 1 (ampere meter) or 2 (source meter),
  REGULATOR_SET 0x0D + the millivolts as two big-endian bytes (800..5000),
  DEVICE_RUNNING_SET 0x0C + 1/0 switches the DUT supply on/off.
- Metadata is text, `name: value` lines ending with `END`: per measurement
  range k = 0..4 the calibration R_k, GS_k, GI_k, O_k, S_k, I_k, UG_k, plus
  Calibrated, VDD, HW, mode, IA. Some devices print `-nan` for a value.
- The stream is little-endian 32-bit words at a fixed 100 kS/s:
  bits 0-13 ADC, 14-16 measurement range, 18-23 a 6-bit sample counter,
  24-31 the eight logic inputs D0-D7.
- Current of a word: adc = ADC * 4, x = (adc - O) * (1.8 / 163840) / R,
  I = UG * (x * (GS * x + GI) + S * VDD_V + I_off) amperes, all per range.

Nordic's app also smooths a few samples after each range switch (a "spike
filter"); this driver reports the calibrated samples unfiltered.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import serial
import serial.tools.list_ports

from profiler.errors import ConfigError, LinkDisconnected, LinkError, LinkTimeout
from profiler.link.transport import open_serial
from profiler.power.base import BatchQueue, MeterInfo, MeterSpec, MeterStats, PowerBatch, PowerMeter, register

SAMPLE_RATE_HZ = 100_000
USB_VID_PID = (0x1915, 0xC00A)
VDD_MIN_MV, VDD_MAX_MV = 800, 5000
ADC_MULT = 1.8 / 163840
RANGES = 5
COUNTER_MOD = 64

IntArray = npt.NDArray[np.integer[Any]]

_METADATA_TIMEOUT_S = 2.0
_DRAIN_QUIET_S = 0.1
_FLUSH_BYTES = 16384  # decode at least every 4,096 samples...
_FLUSH_S = 0.025  # ...or every 25 ms
_NAP_S = 0.004  # 1,600 bytes at 100 kS/s; the OS buffers (4 KB on a pty, more on USB CDC ACM) and the PPK2 hold more
_STOP_QUIET_S = 0.05
_STOP_MAX_S = 1.0


class Cmd(IntEnum):
    """PPK2 command opcodes used here."""

    AVERAGE_START = 0x06
    AVERAGE_STOP = 0x07
    DEVICE_RUNNING_SET = 0x0C
    REGULATOR_SET = 0x0D
    SET_POWER_MODE = 0x11
    GET_META_DATA = 0x19


POWER_MODE = {"ampere": 1, "source": 2}


def regulator_command(voltage_mv: int) -> bytes:
    """REGULATOR_SET for `voltage_mv` (the PPK2 takes the millivolts big-endian)."""
    if not VDD_MIN_MV <= voltage_mv <= VDD_MAX_MV:
        raise ConfigError(f"PPK2 voltage {voltage_mv} mV is outside {VDD_MIN_MV}..{VDD_MAX_MV} mV")
    return bytes([Cmd.REGULATOR_SET, voltage_mv >> 8, voltage_mv & 0xFF])


# -- calibration and decoding ----------------------------------------------------------


def _five(value: float) -> tuple[float, ...]:
    return (value,) * RANGES


@dataclass(frozen=True)
class Calibration:
    """Per-range calibration of one PPK2, from its metadata (defaults: Nordic's, for a device without any)."""

    r: tuple[float, ...] = (1031.64, 101.65, 10.15, 0.94, 0.043)
    gs: tuple[float, ...] = _five(1.0)
    gi: tuple[float, ...] = _five(1.0)
    o: tuple[float, ...] = _five(0.0)
    s: tuple[float, ...] = _five(0.0)
    i: tuple[float, ...] = _five(0.0)
    ug: tuple[float, ...] = _five(1.0)
    calibrated: bool | None = None
    fields: dict[str, str] = field(default_factory=dict)  # every metadata line, as sent

    def current_a(self, adc_raw: IntArray, ranges: IntArray,
                  vdd_mv: float) -> npt.NDArray[np.float64]:
        """Amperes for 14-bit ADC values measured in `ranges` (all < 5), with the supply at `vdd_mv`."""
        r, gs, gi, o, s, i, ug = (np.asarray(v, dtype=np.float64)[ranges]
                                  for v in (self.r, self.gs, self.gi, self.o, self.s, self.i, self.ug))
        x = (adc_raw.astype(np.float64) * 4.0 - o) * (ADC_MULT / r)
        result: npt.NDArray[np.float64] = ug * (x * (gs * x + gi) + (s * (vdd_mv / 1000.0) + i))
        return result

    def table(self, vdd_mv: float) -> npt.NDArray[np.float64]:
        """Amperes for every value of a word's low 17 bits (range * 16384 + ADC); NaN for ranges 5-7.

        Decoding a stream is then one lookup per sample.
        """
        adc = np.tile(np.arange(16384, dtype=np.uint32), RANGES)
        ranges = np.repeat(np.arange(RANGES, dtype=np.uint32), 16384)
        out = np.full(8 * 16384, np.nan)
        out[: RANGES * 16384] = self.current_a(adc, ranges, vdd_mv)
        return out


def parse_metadata(text: str) -> Calibration:
    """The calibration in a metadata block (`name: value` lines up to `END`)."""
    fields: dict[str, str] = {}
    for line in text.replace("\r", "").split("\n"):
        line = line.strip()
        if line == "END":
            break
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    values: dict[str, list[float]] = {}
    defaults = Calibration()
    for key in ("r", "gs", "gi", "o", "s", "i", "ug"):
        per_range = list(getattr(defaults, key))
        for k in range(RANGES):
            raw = fields.get(f"{key.upper()}{k}")
            try:
                number = float(raw) if raw is not None else math.nan
            except ValueError:
                number = math.nan
            # A missing or -nan value keeps the default; a zero resistor would divide by zero.
            if math.isfinite(number) and not (key == "r" and number == 0.0):
                per_range[k] = number
        values[key] = per_range
    calibrated = fields.get("Calibrated")
    return Calibration(
        r=tuple(values["r"]), gs=tuple(values["gs"]), gi=tuple(values["gi"]), o=tuple(values["o"]),
        s=tuple(values["s"]), i=tuple(values["i"]), ug=tuple(values["ug"]),
        calibrated=None if calibrated is None else calibrated not in ("0", ""),
        fields=fields,
    )


@dataclass(frozen=True)
class Words:
    """The fields of a run of sample words."""

    adc: IntArray
    range: IntArray
    counter: IntArray
    logic: npt.NDArray[np.uint8]


def split_words(words: IntArray) -> Words:
    """Split 32-bit sample words into ADC, range, counter and logic fields."""
    return Words(
        adc=words & 0x3FFF,
        range=(words >> 14) & 0x7,
        counter=(words >> 18) & 0x3F,
        logic=(words >> 24).astype(np.uint8),
    )


def _discontinuities(counter: IntArray) -> int:
    if len(counter) < 2:
        return 0
    steps = (counter[1:].astype(np.int64) - counter[:-1].astype(np.int64)) % COUNTER_MOD
    return int(np.count_nonzero(steps != 1))


def find_alignment(data: bytes) -> int:
    """The byte offset (0-3) at which `data` reads as consecutive sample counters."""
    best, best_bad = 0, None
    for offset in range(4):
        n = (len(data) - offset) // 4
        if n < 2:
            continue
        counter = (np.frombuffer(data, dtype="<u4", count=n, offset=offset) >> 18) & 0x3F
        bad = _discontinuities(counter)
        if best_bad is None or bad < best_bad:
            best, best_bad = offset, bad
    return best


class StreamDecoder:
    """Sample words to PowerBatches, with sample indices that count the samples missing from the stream.

    The first word decoded is sample 0. Each next word's counter says how many
    samples were skipped before it (modulo 64: a gap of 64 or more samples
    aliases, see docs/power.md). Words with an impossible range are corrupt:
    they are left out and, since their counter is not trusted either, the next
    good word's counter accounts for them as lost.
    """

    def __init__(self, calibration: Calibration, vdd_mv: int, rate_hz: float = SAMPLE_RATE_HZ) -> None:
        self.calibration = calibration
        self.vdd_mv = vdd_mv
        self.rate_hz = rate_hz
        self.next_index = 0
        self.last_counter: int | None = None
        self.received = 0
        self.lost = 0
        self.corrupt = 0
        self.resyncs = 0
        self._pending = b""
        self._table = calibration.table(vdd_mv)

    def feed(self, data: bytes, host_ns: int) -> PowerBatch | None:
        """Decode `data` (any length; a partial word waits for the next call)."""
        data = self._pending + data
        if self.last_counter is None or self._misaligned(data):
            offset = find_alignment(data)
            if offset:
                data = data[offset:]
                if self.last_counter is not None:
                    self.resyncs += 1
        n = len(data) // 4
        self._pending = data[n * 4:]
        if n == 0:
            return None
        words = np.frombuffer(data, dtype="<u4", count=n)
        current = self._table[words & 0x1FFFF]
        good = ~np.isnan(current)
        n_bad = n - int(np.count_nonzero(good))
        if n_bad:
            self.corrupt += n_bad
            words, current = words[good], current[good]
            if len(words) == 0:
                return None
        counter = ((words >> 18) & 0x3F).astype(np.int64)
        previous = np.empty_like(counter)
        previous[1:] = counter[:-1]
        if self.last_counter is None:
            previous[0] = counter[0] - 1
        else:
            previous[0] = self.last_counter
        gaps = (counter - previous - 1) % COUNTER_MOD
        index = self.next_index + np.arange(len(counter), dtype=np.int64) + np.cumsum(gaps)
        lost = int(gaps.sum())
        self.next_index = int(index[-1]) + 1
        self.last_counter = int(counter[-1])
        self.received += len(counter)
        self.lost += lost
        logic = (words >> 24).astype(np.uint8)
        return PowerBatch.constant_voltage(index / self.rate_hz, current, self.vdd_mv / 1000.0, logic, lost, host_ns)

    def _misaligned(self, data: bytes) -> bool:
        n = len(data) // 4
        if n < 64:
            return False
        counter = (np.frombuffer(data, dtype="<u4", count=n) >> 18) & 0x3F
        return _discontinuities(counter) > n // 2


# -- the meter -----------------------------------------------------------------------------


def find_ppk2_port() -> str:
    """The serial port of the one PPK2 plugged in; ConfigError when there is none or several."""
    vid, pid = USB_VID_PID
    ports = sorted(p.device for p in serial.tools.list_ports.comports() if (p.vid, p.pid) == (vid, pid))
    if not ports:
        raise ConfigError(f"no PPK2 found (USB {vid:04x}:{pid:04x}); plug it in or name its port, "
                          "e.g. --power ppk2:/dev/ttyACM1")
    if len(ports) > 1:
        raise ConfigError(f"several PPK2 ports ({', '.join(ports)}); name one, e.g. --power ppk2:{ports[0]}")
    return ports[0]


@register
class Ppk2Meter(PowerMeter):
    """A PPK2 as source meter (it powers the board) or ampere meter (in series with the board's supply).

    Spec: `ppk2[:PORT][?mode=ampere|source&voltage_mv=N&buffer_s=S&silence_s=S]`.
    Without PORT the one PPK2 plugged in is used. In source mode `voltage_mv`
    is what the PPK2 supplies; in ampere mode it is the board's supply voltage,
    which the PPK2 does not measure, used for power (and the calibration's
    supply term). Either way it must be given: a wrong guess would either harm
    a board or misstate its power.
    """

    kind = "ppk2"

    def __init__(self, spec: MeterSpec) -> None:
        super().__init__(spec)
        spec.check_options(("mode", "voltage_mv", "buffer_s", "silence_s"))
        self.mode = spec.choice_option("mode", tuple(POWER_MODE)) or "ampere"
        self.voltage_mv = spec.int_option("voltage_mv", VDD_MIN_MV, VDD_MAX_MV)
        self.buffer_s = spec.float_option("buffer_s", 0.1, 3600.0) or 30.0
        self.silence_s = spec.float_option("silence_s", 0.05, 60.0) or 1.0
        self.address = spec.address
        self.calibration = Calibration()
        self._port: serial.SerialBase | None = None
        self._queue = BatchQueue(int(self.buffer_s * SAMPLE_RATE_HZ))
        self._decoder: StreamDecoder | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._abort = threading.Event()

    # -- commands ------------------------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        port = self._require_port()
        try:
            port.write(payload)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkDisconnected(f"lost the PPK2 on {self.address} while sending: {exc}; "
                                   "check its USB cable and re-run") from exc

    def _require_port(self) -> serial.SerialBase:
        if self._port is None:
            raise LinkError("the PPK2 is not open; call configure() first")
        return self._port

    def _drain(self) -> None:
        # A PPK2 left streaming by an earlier program keeps sending: stop it and wait for quiet.
        port = self._require_port()
        deadline = time.monotonic() + 2.0
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            chunk = port.read(port.in_waiting or 1)
            now = time.monotonic()
            if chunk:
                quiet_since = now
            elif now - quiet_since >= _DRAIN_QUIET_S:
                return

    def _metadata(self) -> str:
        port = self._require_port()
        self._send(bytes([Cmd.GET_META_DATA]))
        deadline = time.monotonic() + _METADATA_TIMEOUT_S
        text = b""
        while time.monotonic() < deadline:
            text += port.read(port.in_waiting or 1)
            if b"END" in text:
                return text.decode("ascii", errors="replace")
        raise LinkTimeout(f"the PPK2 on {self.address} did not answer the metadata request within "
                          f"{_METADATA_TIMEOUT_S:g} s; check the port is a PPK2 with Nordic's firmware "
                          "(unplug and replug it), then re-run")

    # -- PowerMeter ------------------------------------------------------------------------

    def configure(self, *, voltage_mv: int | None = None, mode: str | None = None) -> MeterInfo:
        """Open the port, stop any stream left running, read the calibration, set mode, voltage and DUT power."""
        if mode is not None:
            if mode not in POWER_MODE:
                raise ConfigError(f"PPK2 mode {mode!r} must be one of {', '.join(POWER_MODE)}")
            self.mode = mode
        if voltage_mv is not None:
            regulator_command(voltage_mv)  # range check
            self.voltage_mv = voltage_mv
        if self.voltage_mv is None:
            what = "the voltage to supply" if self.mode == "source" else "the board's supply voltage"
            raise ConfigError(f"PPK2 in {self.mode} mode needs {what}: "
                              f"--power ppk2:{self.address or '/dev/ttyACM1'}?mode={self.mode}&voltage_mv=3300")
        if self.address is None:
            self.address = find_ppk2_port()
        if self._port is None:
            self._port = open_serial(self.address, 115200)
        self._send(bytes([Cmd.AVERAGE_STOP]))
        self._drain()
        self.calibration = parse_metadata(self._metadata())
        self._send(bytes([Cmd.SET_POWER_MODE, POWER_MODE[self.mode]]))
        if self.mode == "source":
            self._send(regulator_command(self.voltage_mv))
        self._send(bytes([Cmd.DEVICE_RUNNING_SET, 1]))
        fields = self.calibration.fields
        details: dict[str, str] = {k: fields[k] for k in ("HW", "IA", "mode", "VDD") if k in fields}
        return MeterInfo(kind=self.kind, address=self.address, model="PPK2", mode=self.mode,
                         voltage_mv=self.voltage_mv, sample_rate_hz=float(SAMPLE_RATE_HZ), logic_inputs=8,
                         calibrated=self.calibration.calibrated, details=details)

    def start(self) -> None:
        """Start the 100 kS/s stream and the reader thread."""
        port = self._require_port()
        if self._thread is not None:
            raise LinkError("the PPK2 is already streaming; stop() it first")
        assert self.voltage_mv is not None  # configure() made sure
        self._queue.clear()
        self._decoder = StreamDecoder(self.calibration, self.voltage_mv)
        self._stopping.clear()
        self._abort.clear()
        port.reset_input_buffer()
        self._send(bytes([Cmd.AVERAGE_START]))
        self._thread = threading.Thread(target=self._reader, name=f"ppk2-reader {self.address}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the stream; the reader keeps what was in flight, up to a short quiet period."""
        if self._thread is None:
            return
        try:
            self._send(bytes([Cmd.AVERAGE_STOP]))
        finally:
            self._stopping.set()
            self._thread.join(_STOP_MAX_S + 1.0)
            self._thread = None

    def read(self, timeout_s: float = 0.0) -> PowerBatch:
        """Samples since the last read (LinkError once the PPK2 has stopped answering)."""
        return self._queue.take(timeout_s)

    @property
    def stats(self) -> MeterStats:
        """Received, lost (counter gaps, host buffer) and corrupt samples since start."""
        d = self._decoder
        if d is None:
            return MeterStats()
        return MeterStats(received=d.received, lost_in_transfer=d.lost, lost_in_host=self._queue.lost,
                          corrupt=d.corrupt, resyncs=d.resyncs)

    def close(self) -> None:
        """Stop streaming and close the port (the DUT supply is left as it is)."""
        if self._port is None:
            return
        try:
            if self._thread is not None:
                try:
                    self.stop()
                except LinkError:
                    self._abort.set()
                    if self._thread is not None:
                        self._thread.join(1.0)
                    self._thread = None
        finally:
            self._port.close()
            self._port = None

    # -- the reader thread -----------------------------------------------------------------

    def _reader(self) -> None:
        port, decoder = self._port, self._decoder
        assert port is not None and decoder is not None
        buf = bytearray()
        last_data = last_flush = time.monotonic()
        stop_deadline: float | None = None
        try:
            while not self._abort.is_set():
                chunk = port.read(port.in_waiting or 1)
                now = time.monotonic()
                if chunk:
                    buf += chunk
                    last_data = now
                    if len(chunk) < 2048:
                        time.sleep(_NAP_S)  # let more bytes arrive: fewer, larger reads
                stopping = self._stopping.is_set()
                if buf and (len(buf) >= _FLUSH_BYTES or now - last_flush >= _FLUSH_S or stopping):
                    batch = decoder.feed(bytes(buf), time.monotonic_ns())
                    buf.clear()
                    last_flush = now
                    if batch is not None:
                        self._queue.put(batch)
                if stopping:
                    stop_deadline = stop_deadline or now + _STOP_MAX_S
                    if now - last_data >= _STOP_QUIET_S or now >= stop_deadline:
                        return
                elif now - last_data >= self.silence_s:
                    self._queue.fail(LinkTimeout(
                        f"the PPK2 on {self.address} sent nothing for {self.silence_s:g} s while streaming; "
                        "check its USB cable and power, then re-run"))
                    return
        except (serial.SerialException, OSError) as exc:
            self._queue.fail(LinkDisconnected(f"lost the PPK2 on {self.address}: {exc}; "
                                              "check its USB cable and re-run"))
