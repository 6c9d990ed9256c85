"""Joulescope JS110/JS220 through Jetperch's `joulescope` library (v1 API), imported only when used.

Spec: `joulescope[:SERIAL][?rate_hz=N&buffer_s=S]`. The Joulescope measures
current and voltage per sample; its two general-purpose inputs GPI0/GPI1
arrive as logic bits 0 and 1 (for the sync marker). The library streams into
its own ring buffer from its USB thread and calls `stream_notify` there; we
copy the new samples out into our bounded queue. Samples the library marks
missing (NaN) and samples its ring overwrote before we copied them are
counted as lost. Not exercised against a device here: only its offline paths
are tested.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from typing import Any

import numpy as np

from profiler.errors import ConfigError, LinkError, ToolMissing
from profiler.power.base import BatchQueue, MeterInfo, MeterSpec, MeterStats, PowerBatch, PowerMeter, register

DEFAULT_RATE_HZ = 100_000
_INSTALL = "pip install joulescope (or the profiler's [joulescope] extra)"


def _library() -> Any:
    if importlib.util.find_spec("joulescope") is None:
        raise ToolMissing(f"the Joulescope meter needs the joulescope library; {_INSTALL}")
    return importlib.import_module("joulescope")


class _Copier:
    """The library's stream-process hook: copies new samples out of its ring buffer (runs on its USB thread)."""

    def __init__(self, queue: BatchQueue, rate_hz: float) -> None:
        self.queue = queue
        self.rate_hz = rate_hz
        self.driver_active = True
        self.first_id: int | None = None
        self.next_id: int | None = None
        self.received = 0
        self.lost = 0

    def stream_notify(self, stream_buffer: Any) -> bool:
        start, end = stream_buffer.sample_id_range
        if start is None or end is None:
            return False
        if self.first_id is None:
            self.first_id = self.next_id = start
        assert self.next_id is not None
        lost = max(0, start - self.next_id)  # the ring overwrote these before we came
        begin = max(self.next_id, start)
        if end <= begin:
            return False
        data = stream_buffer.samples_get(begin, end, fields=["current", "voltage", "current_lsb", "voltage_lsb"])
        signals = data["signals"]
        current = np.asarray(signals["current"]["value"], dtype=np.float64)
        voltage = np.asarray(signals["voltage"]["value"], dtype=np.float64)
        logic = np.zeros(len(current), dtype=np.uint8)
        for bit, name in ((0, "current_lsb"), (1, "voltage_lsb")):
            if name in signals:
                logic |= (np.asarray(signals[name]["value"], dtype=np.uint8) & 1) << bit
        t_s = (np.arange(begin, end, dtype=np.int64) - self.first_id) / self.rate_hz
        ok = np.isfinite(current) & np.isfinite(voltage)
        missing = len(ok) - int(np.count_nonzero(ok))
        self.lost += lost + missing
        self.received += len(ok) - missing
        self.next_id = end
        self.queue.put(PowerBatch(t_s[ok], current[ok], voltage[ok], logic[ok], lost + missing, time.monotonic_ns()))
        return False  # never ask the library to stop


@register
class JoulescopeMeter(PowerMeter):
    """A Joulescope, by serial number or the only one connected."""

    kind = "joulescope"

    def __init__(self, spec: MeterSpec) -> None:
        super().__init__(spec)
        spec.check_options(("rate_hz", "buffer_s"))
        self.rate_hz = spec.int_option("rate_hz", 1, 2_000_000) or DEFAULT_RATE_HZ
        self.buffer_s = spec.float_option("buffer_s", 0.1, 3600.0) or 30.0
        _library()  # fail before the session starts anything
        self._device: Any = None
        self._queue = BatchQueue(int(self.buffer_s * self.rate_hz))
        self._copier: _Copier | None = None

    def configure(self, *, voltage_mv: int | None = None, mode: str | None = None) -> MeterInfo:
        """Open the device and set its sampling rate (it measures voltage itself: `voltage_mv` is ignored)."""
        if mode not in (None, "ampere"):
            raise ConfigError(f"a Joulescope measures in series with the supply; mode {mode!r} is not available")
        js = _library()
        devices = js.scan(config="off")
        serial = self.spec.address
        if serial is not None:
            devices = [d for d in devices if str(getattr(d, "serial_number", "")) == serial]
        if len(devices) != 1:
            found = "none" if not devices else f"{len(devices)}"
            raise ConfigError(f"Joulescope{' ' + serial if serial else ''}: {found} found; "
                              "connect it or name its serial number, e.g. --power joulescope:002345")
        device = devices[0]
        try:  # queued by the library until open()
            device.parameter_set("buffer_duration", max(1, int(self.buffer_s)))
            device.parameter_set("sampling_frequency", self.rate_hz)
            device.parameter_set("i_range", "auto")
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"Joulescope {device}: {exc}; choose another rate_hz, e.g. 100000") from exc
        try:
            device.open()
        except Exception as exc:  # the library raises plain exceptions for USB trouble
            raise LinkError(f"cannot open the Joulescope {device}: {exc}; check its USB cable and re-run") from exc
        self._device = device
        return MeterInfo(kind=self.kind, address=str(getattr(device, "serial_number", serial or "")),
                         model=str(getattr(device, "model", "Joulescope")), mode="ampere", voltage_mv=None,
                         sample_rate_hz=float(self.rate_hz), logic_inputs=2)

    def start(self) -> None:
        """Start streaming into the library's buffer; our hook copies samples out."""
        if self._device is None:
            raise LinkError("the Joulescope is not open; call configure() first")
        self._queue.clear()
        self._copier = _Copier(self._queue, float(self.rate_hz))
        self._device.stream_process_register(self._copier)
        self._device.start(stop_fn=self._on_stop)

    def _on_stop(self, event: int = 0, message: str = "") -> None:
        if event:
            self._queue.fail(LinkError(f"the Joulescope stopped streaming ({event}: {message}); "
                                       "check its USB cable and re-run"))

    def stop(self) -> None:
        """Stop streaming."""
        if self._device is not None:
            self._device.stop()

    def read(self, timeout_s: float = 0.0) -> PowerBatch:
        """Samples since the last read."""
        return self._queue.take(timeout_s)

    @property
    def stats(self) -> MeterStats:
        """Received and lost samples since start."""
        c = self._copier
        if c is None:
            return MeterStats()
        return MeterStats(received=c.received, lost_in_transfer=c.lost, lost_in_host=self._queue.lost)

    def close(self) -> None:
        """Stop and close the device."""
        device, self._device = self._device, None
        if device is not None:
            try:
                device.stop()
            finally:
                device.close()
