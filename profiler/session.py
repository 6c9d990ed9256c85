"""A profiling session: connect, load, warm up, K repetitions, summary.

The session turns device events into records and hands each record to every
sink. It owns the board (an emulator process or a serial port) and always
releases it. Whatever stops it, the last records say why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from profiler import __version__
from profiler.emulator import QemuBoard
from profiler.errors import (
    FirmwareError,
    InternalError,
    Interrupted,
    LinkDisconnected,
    LinkTimeout,
    ProfilerError,
    ResultsError,
    interruption,
)
from profiler.link.protocol import Hello, ModelStatus
from profiler.link.transport import Deadlines, SerialLink, open_serial
from profiler.measure import RepetitionEvents, summarise_session
from profiler.models.format import read_header
from profiler.power.telemetry import summary_telemetry
from profiler.records import SCHEMA_VERSION, ErrorRecord, PhaseRecord, Record, RunSettings, SessionHeader, SummaryRecord
from profiler.run.repetition import Repetitions
from profiler.run.target import ModelHandle, Target
from profiler.sinks import Sink


@dataclass
class Session(Repetitions):
    """One profiling session over one board."""

    target: Target
    model: ModelHandle
    settings: RunSettings
    sinks: Sequence[Sink]
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    holds: list[Any] = field(default_factory=list)  # board lock, labgrid place: each `.close()`d at teardown
    deadlines: Deadlines = field(default_factory=Deadlines)
    notify: Callable[[str], None] = field(default_factory=lambda: _log_warning)  # a line for the user, at once
    _pending: list[Record] = field(default_factory=list)
    _header_written: bool = False
    _phase_name: str | None = None
    _host_ms: dict[str, float] = field(default_factory=dict)
    _emulator: QemuBoard | None = None
    _link: SerialLink | None = None
    _hello: Hello | None = None
    _nonce: int = 0  # of the last STATUS_REQ
    _runs_finished: int = 0  # DONEs since the last handshake: a board that then says it ran none has restarted
    _quality: Any = None
    _trace_dir: tempfile.TemporaryDirectory[str] | None = None
    _started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    # -- records -----------------------------------------------------------

    def _emit(self, record: Record) -> None:
        if not self._header_written:
            self._pending.append(record)
            return
        for sink in self.sinks:
            sink.emit(record)

    def _write_header(self) -> None:
        if self._header_written:
            return
        hello, board, fw = self._hello, self.target.board, self.target.firmware
        emulator: dict[str, Any] | None = None
        if self._emulator is not None:
            emulator = {
                "program": self._emulator.spec.binary,
                "machine": self._emulator.spec.machine,
                "icount_shift": self._emulator.spec.icount_shift,
            }
        header = SessionHeader(
            schema_version=SCHEMA_VERSION,
            profiler_version=__version__,
            session_id=self.session_id,
            started_at=self._started_at.isoformat(timespec="seconds"),
            device=board.name,
            board=hello.board if hello else board.name,
            platform=board.family,
            core=board.core,
            clock_hz=hello.clock_hz if hello else board.clock_hz,
            timer_hz=hello.timer_hz if hello else 0,
            firmware_id=hello.firmware_id if hello else (fw.firmware_id if fw else ""),
            model=self.model.name,
            model_sha256=self.model.sha256,
            model_crc32=f"{self.model.crc32:08x}",
            quantization=self.model.quantization,
            emulated=self.emulated,
            host=socket.gethostname(),
            prompt=self.settings.prompt,
            prompt_tokens=list(self.settings.prompt_tokens),
            tokens=self.settings.tokens,
            repetitions=self.settings.repetitions,
            warmup=self.settings.warmup,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
            serial_url=self._link.url if self._link else (self.target.port or ""),
            ram_total_bytes=hello.ram_total_bytes if hello else board.sram_bytes,
            flash_total_bytes=hello.flash_total_bytes if hello else board.flash_bytes,
            firmware_sections=fw.sections if fw else None,
            emulator=emulator,
            arithmetic=("fixed-point" if self._fixed_point() else "f32") if hello else None,
            model_config=dataclasses.asdict(read_header(self.model.path).config) if self.model.path.is_file() else None,
        )
        self._header_written = True
        self._emit(header)
        pending, self._pending = self._pending, []
        for record in pending:
            self._emit(record)

    @contextlib.contextmanager
    def _phase(self, name: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """Time a host phase; the record is written even when the phase fails."""
        self._phase_name = name
        start_ns, t0 = time.time_ns(), time.perf_counter()
        extra: dict[str, Any] = {}
        try:
            yield extra
        finally:
            host_ms = (time.perf_counter() - t0) * 1e3
            if fields.get("repetition") is None:
                self._host_ms[name] = self._host_ms.get(name, 0.0) + host_ms
            self._emit(PhaseRecord(name=name, start_unix_ns=start_ns, host_ms=host_ms, **fields, **extra))

    # -- the run -----------------------------------------------------------

    def run(self) -> SummaryRecord:
        """Run the session to its end; never raises without writing why first."""
        self._started_at = datetime.now(timezone.utc)
        failure: ProfilerError | None = None
        close_error: ProfilerError | None = None
        summary: SummaryRecord | None = None
        reps: list[RepetitionEvents] = []
        try:
            self._connect()
            reps = self._repetitions()
            self._check_quality()
        except KeyboardInterrupt as exc:
            failure = interruption(exc)
        except ProfilerError as exc:
            failure = exc
        except Exception as exc:  # a bug must still leave a file that says so
            failure = InternalError(
                f"internal error {type(exc).__name__}: {exc}; re-run with --traceback and report it"
            )
            failure.__cause__ = exc
        finally:
            phase_at_failure = self._phase_name
            with contextlib.suppress(KeyboardInterrupt):
                self._teardown()
            self._write_header()
            decoder = self._link.decoder if self._link else None
            summary = summarise_session(
                reps,
                self.settings,
                frames_corrupt=decoder.frames_corrupt if decoder else 0,
                frames_lost=decoder.frames_lost if decoder else 0,
                host_ms=dict(self._host_ms),
                failure=failure,
            )
            fw = self.target.firmware
            summary = dataclasses.replace(
                summary,
                ram_total_bytes=self._hello.ram_total_bytes if self._hello else self.target.board.sram_bytes,
                flash_used_bytes=fw.flash_used_bytes if fw else None,
                model_bytes=self.model.size_bytes,
            )
            records = [r.record for r in reps if r.record is not None]
            summary = dataclasses.replace(
                summary, **summary_telemetry(records, self.target.power, emulated=self.emulated))
            summary = self._with_quality(summary)
            summary = self._with_prediction(summary)
            if failure is not None:
                self._emit(ErrorRecord(
                    kind=_failure_kind(failure), message=str(failure),
                    phase=phase_at_failure, exit_code=failure.exit_code,
                ))
            self._emit(summary)
            close_error = self._close_sinks()
        if failure is not None:
            raise failure
        if close_error is not None:
            raise close_error
        return summary

    def _close_sinks(self) -> ProfilerError | None:
        """Close every sink even if one fails; return the first failure (a strict export)."""
        first: ProfilerError | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except ProfilerError as exc:
                first = first or exc
        return first

    def _connect(self) -> None:
        target = self.target
        with self._phase("flash") as flash:
            if target.emulate:
                assert target.firmware is not None
                self._emulator = target.adapter.emulate(target.board, target.firmware.elf, self.model.path)
                self._trace_if_predicting(self._emulator, target.firmware.elf)
                self._emulator.start()
            elif target.flash:
                flash["detail"] = self._flash_unless_present()
        with self._phase("device_connection"):
            if self._link is None:  # else the link of the check before flashing is still open
                url = self._emulator.url if self._emulator else target.adapter.open_link(target.board,
                                                                                         target.port or "")
                self._link = SerialLink(open_serial(url, target.board.baud, connect_timeout_s=5.0), url)
                # a board on a port may have said HELLO long ago: ask at once; ours boots as we connect
                self._hello = self._wait_hello(ask_at_once=not target.emulate)
        assert self._hello is not None
        self._write_header()
        with self._phase("model_loading"):
            self._check_model(self._hello)
            if self.target.power is not None:
                self.target.power.start(self._hello.timer_hz)

    def _flash_unless_present(self) -> dict[str, Any]:
        """Flash a real board, unless its HELLO says it already holds this model; what happened, for the record.

        A board that holds another model and cannot be flashed stops the session naming both hashes.
        """
        target, model = self.target, self.model
        assert target.firmware is not None and target.port is not None
        hello = self._probe_hello(target.port)
        if hello is not None and hello.model_status == ModelStatus.OK and hello.model_crc32 == model.crc32:
            detail: dict[str, Any] = {
                "skipped": True, "board_firmware_id": hello.firmware_id,
                "reason": f"the board already holds {model.name} (crc32 {model.crc32:08x}, from its HELLO)",
            }
            if hello.firmware_id != target.firmware.firmware_id:
                detail["built_firmware_id"] = target.firmware.firmware_id
            return detail
        if self._link is not None:
            self._link.close()  # the flasher opens the port itself
            self._link, self._hello = None, None
        try:
            report = target.adapter.flash(target.board, target.firmware.elf, model.path, target.port)
        except ProfilerError as exc:
            if hello is None or hello.model_crc32 == model.crc32:
                raise
            raise FirmwareError(
                f"the board holds another model (crc32 {hello.model_crc32:08x}), not {model.name} "
                f"(crc32 {model.crc32:08x}), and could not be flashed ({exc}); flash {model.name} onto it, "
                "or run the model it holds"
            ) from exc
        written = [r.name for r in report.regions if r.written]
        return {"skipped": False, "flasher": report.flasher, "written": written, "already_there": list(report.skipped),
                "board_model_crc32": None if hello is None else f"{hello.model_crc32:08x}"}

    def _teardown(self) -> None:
        with self._phase("teardown"):
            if self._link is not None:
                self._link.close()
            if self._emulator is not None:
                self._emulator.close()
            if self.target.power is not None:
                self.target.power.stop()
            while self.holds:
                held = self.holds.pop()
                try:
                    held.close()
                except Exception as exc:  # a release that fails must not cost the closing records
                    logging.getLogger("tiny_profiler").warning("could not release %s: %s", held, exc)


def _log_warning(message: str) -> None:
    logging.getLogger("tiny_profiler").warning(message)


def _failure_kind(failure: ProfilerError) -> str:
    if isinstance(failure, Interrupted):
        return "interrupted"
    if isinstance(failure, LinkDisconnected):
        return "disconnect"
    if isinstance(failure, LinkTimeout):
        return "timeout"
    if isinstance(failure, FirmwareError):
        return "firmware"
    if isinstance(failure, InternalError):
        return "crash"
    if isinstance(failure, ResultsError):
        return "results"  # the results could not be written: a full disk, a read-only mount
    return "error"
