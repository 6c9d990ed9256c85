"""A profiling session: connect, load, warm up, K repetitions, summary.

The session turns device events into records and hands each record to every
sink. It owns the board (an emulator process or a serial port) and always
releases it. Whatever stops it, the last records say why.
"""

from __future__ import annotations

import codecs
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
from pathlib import Path
from typing import Any

from platforms.base import PlatformAdapter
from platforms.boards import BoardProfile
from profiler import __version__
from profiler.emulator import QemuBoard, instructions_from_ticks
from profiler.errors import (
    FirmwareError,
    InternalError,
    Interrupted,
    LinkDisconnected,
    LinkError,
    LinkTimeout,
    ProfilerError,
    ProtocolError,
    ResultsError,
    interruption,
)
from profiler.firmware import FirmwareImage
from profiler.link.protocol import (
    MODEL_STATUS_TEXT,
    PROTOCOL_VERSION,
    STATUS_DONE,
    STATUS_IDLE,
    Boot,
    Capability,
    CpuUsage,
    DeviceError,
    Done,
    Hello,
    Log,
    Logits,
    MemorySample,
    ModelStatus,
    MsgType,
    Phase,
    PhaseMark,
    PowerReading,
    Status,
    Temperature,
    Token,
    check_hello,
    eval_payload,
    run_payload,
    status_request_payload,
)
from profiler.link.transport import Backoff, Deadlines, SerialLink, Wait, open_serial
from profiler.measure import RepetitionEvents, summarise_repetition, summarise_session
from profiler.models.format import read_header
from profiler.power.telemetry import (
    PowerSource,
    device_telemetry,
    over_temperature,
    summary_telemetry,
    with_telemetry,
)
from profiler.records import (
    SCHEMA_VERSION,
    BoardResetRecord,
    ErrorRecord,
    PhaseRecord,
    Record,
    RunSettings,
    SampleRecord,
    SessionHeader,
    SummaryRecord,
    TokenRecord,
)
from profiler.sinks import Sink

# Asking again (docs/protocol.md, "Asking again"): the longest interval between two requests, and how long
# the line may be quiet before STATUS_REQ where the board owes a frame it sends at once (a RUN's first
# frame; MEM and DONE after the last token).
ASK_MAX_S = 1.0
STATUS_AFTER_S = 0.25


@dataclass(frozen=True)
class ModelHandle:
    """A model file as the session needs it: identity, tokenizer, reference tokens."""

    path: Path
    name: str
    sha256: str
    crc32: int
    size_bytes: int
    quantization: str
    token_bytes: Callable[[int, int], bytes]
    # (prompt, tokens, temperature, seed, fixed_point) -> the tokens the board must produce
    reference_tokens: Callable[[Sequence[int], int, float, int, bool], list[int]]
    # run --check-quality: (tokens, the board's logits per position, fixed_point) -> a QualityCheck
    quality_check: Callable[[list[int], list[list[float]], bool], Any] | None = None
    vocab_size: int = 0  # 0: unknown, token ids are not checked


@dataclass
class Target:
    """The board to profile and how to reach it."""

    board: BoardProfile
    adapter: PlatformAdapter
    firmware: FirmwareImage | None
    emulate: bool
    port: str | None = None
    flash: bool = True
    power: PowerSource | None = None


@dataclass
class Session:
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

    @property
    def emulated(self) -> bool:
        """Launched on an emulator by us, or a board that says it runs on one (reached through a port)."""
        return self.target.emulate or bool(self._hello and self._hello.capabilities & Capability.EMULATOR)

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

    def _probe_hello(self, port: str) -> Hello | None:
        """Ask the board for its HELLO, again and again until the probe deadline; None when nothing answers.

        Says so before anything is flashed: boot text, a lost request or a lost answer are asked through,
        so only a board that never answers (another firmware, a bootloader) gets here.
        """
        seconds = min(self.deadlines.probe_s, self.deadlines.hello_s)
        try:
            self._link = SerialLink(open_serial(port, self.target.board.baud, connect_timeout_s=5.0), port)
            self._hello = self._wait_hello(seconds, ask_at_once=True)
        except LinkTimeout as exc:
            self.notify(f"no profiler firmware answers on {port} ({exc}); flashing it")
            return None
        except ProtocolError as exc:
            self.notify(f"the board on {port} speaks another protocol ({exc}); flashing it")
            return None
        return self._hello

    def _wait_hello(self, seconds: float | None = None, ask_at_once: bool = True) -> Hello:
        """The board's HELLO, asking with HELLO_REQ (after a delimiter) with backoff until the deadline."""
        link = self._link
        assert link is not None
        wait = Wait("the board's HELLO", self.deadlines.hello_s if seconds is None else seconds)
        asks = Backoff(0.0 if ask_at_once else 1.0, ASK_MAX_S)  # ours says HELLO as it boots: ask later

        def ask() -> None:
            if asks.due():
                link.send(MsgType.HELLO_REQ)
                wait.requests += 1

        for event in self._events(wait, ask):
            if isinstance(event, Boot):
                return event.hello
            if isinstance(event, Hello):
                return event
        raise AssertionError("unreachable")

    def _check_model(self, hello: Hello) -> None:
        if hello.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"board speaks protocol {hello.protocol_version}, this profiler {PROTOCOL_VERSION}; "
                "re-flash the firmware that ships with this profiler"
            )
        check_hello(hello)
        if hello.model_status != ModelStatus.OK:
            status = MODEL_STATUS_TEXT.get(ModelStatus(hello.model_status), f"status {hello.model_status}")
            raise FirmwareError(f"board reports {status}; re-flash the model", code=hello.model_status)
        if hello.model_crc32 != self.model.crc32:
            raise FirmwareError(
                f"the model on the board (crc32 {hello.model_crc32:08x}) is not {self.model.name} "
                f"(crc32 {self.model.crc32:08x}); flash the model you asked for"
            )

    def _events(self, wait: Wait, ask: Callable[[], None] | None = None) -> Iterator[Any]:
        """The board's events until `wait`'s deadline; `ask` is called whenever a read brought nothing."""
        assert self._link is not None
        try:
            for event in self._link.events(wait, idle=True):
                if event is None:
                    if ask is not None:
                        ask()
                    continue
                if isinstance(event, DeviceError):
                    raise FirmwareError(f"board error {event.code}: {event.message}", code=event.code)
                if isinstance(event, Log):
                    continue
                yield event
        except LinkDisconnected as exc:
            reason = self._emulator.exit_reason() if self._emulator is not None else None
            if reason is not None:
                raise LinkDisconnected(f"{exc}; {reason}") from exc
            raise

    def _repetitions(self) -> list[RepetitionEvents]:
        settings, reference = self.settings, self._reference()
        total = settings.warmup + settings.repetitions
        done: list[RepetitionEvents] = []
        warmup_ctx: contextlib.AbstractContextManager[Any] = (
            self._phase("warmup") if settings.warmup else contextlib.nullcontext()
        )
        with warmup_ctx:
            for wire_rep in range(settings.warmup):
                self._one_repetition(wire_rep, wire_rep, True, reference)
        for wire_rep in range(settings.warmup, total):
            done.append(self._one_repetition(wire_rep, wire_rep - settings.warmup, False, reference))
        return done

    def _fixed_point(self) -> bool:
        """Whether the board runs the fixed-point forward pass (HELLO capability bit 5)."""
        return self._hello is not None and bool(self._hello.capabilities & Capability.FIXED_POINT)

    def _reference(self) -> list[int]:
        with self._phase("reference"):
            s = self.settings
            return self.model.reference_tokens(s.prompt_tokens, s.tokens, s.temperature, s.seed,
                                               self._fixed_point())

    def _one_repetition(self, wire_rep: int, rep: int, warmup: bool, reference: list[int]) -> RepetitionEvents:
        link, hello = self._link, self._hello
        assert link is not None and hello is not None
        s, decoder = self.settings, link.decoder
        events = RepetitionEvents(rep, warmup, hello.timer_hz)
        # Host arrival times of the markers, for the host-side span of each phase only.
        arrived_ns: dict[PhaseMark, int] = {PhaseMark.PREFILL_START: time.time_ns()}
        lost_before = decoder.frames_lost + decoder.frames_corrupt
        restarts_before = decoder.sequence_restarts
        self._phase_name = "prefill"
        flags, period_us = self.target.power.run_flags() if self.target.power else (None, 0)
        run = run_payload(wire_rep, s.tokens, s.temperature, s.seed, list(s.prompt_tokens),
                          flags=flags, sample_period_us=period_us)
        link.send(MsgType.RUN, run)
        prev = s.prompt_tokens[-1]
        held: list[TokenRecord] = []
        # Byte-fallback tokens can split one UTF-8 character across tokens.
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        wait = Wait(f"the first frame of repetition {rep}", self.deadlines.frame_s)
        asks = Backoff(STATUS_AFTER_S, ASK_MAX_S)
        nonces: set[int] = set()  # STATUS_REQs sent since the RUN last went out: only their answers count
        seen = answered = False  # a frame of this repetition arrived; a STATUS said its MEM and DONE follow again
        recovered = 0  # MEM and DONE that were lost and came again on asking
        restarted: Hello | None = None  # a reset cut this repetition short: the board's HELLO after it
        unheard = False  # a reset before this repetition's first frame, heard of without its HELLO

        def ask() -> None:
            # Silence where the board owes a frame it sends at once: the RUN, or the end of the repetition,
            # may have been lost; or half the deadline gone (a reset whose boot HELLO was lost). A board still
            # computing answers once it is done; the answer is idempotent.
            ended = PhaseMark.DECODE_END in events.phases or len(events.tokens) >= s.tokens
            lost = decoder.frames_lost + decoder.frames_corrupt > lost_before
            overdue = time.monotonic() - wait.started > wait.seconds / 2
            if (not seen or ended or lost or overdue) and asks.due():
                self._nonce = (self._nonce + 1) & 0xFFFF
                nonces.add(self._nonce)
                link.send(MsgType.STATUS_REQ, status_request_payload(self._nonce))
                wait.requests += 1

        try:
            for event in self._events(wait, ask):
                # A reset: a HELLO with sequence 0, or sequence numbers that went back (its HELLO was lost).
                if isinstance(event, Boot) or decoder.sequence_restarts > restarts_before:
                    restarts_before = decoder.sequence_restarts
                    boot_hello = event.hello if isinstance(event, Boot) else None
                    if seen:  # the repetition in flight is cut short
                        restarted = boot_hello or self._wait_hello()
                        break
                    # Before any frame of this RUN: the board finished the last one and restarted. The RUN reached
                    # it after its boot (and runs), or it is sent again below when the board says it is idle.
                    self._board_reset(rep, boot_hello)
                    unheard = unheard or boot_hello is None
                    if isinstance(event, Boot):
                        continue
                if isinstance(event, Status):
                    if event.nonce not in nonces:
                        continue  # an answer to a request of an earlier repetition, or before the RUN went again
                    if event.state == STATUS_DONE and event.rep == wire_rep:
                        answered = True
                    elif not seen:  # the board is idle and never got this RUN
                        if event.state == STATUS_IDLE and self._runs_finished:
                            # it finished RUNs before, yet says none since its boot: it restarted, its HELLO was lost
                            self._board_reset(rep, self._wait_hello())
                        nonces.clear()
                        link.send(MsgType.RUN, run)
                        wait.requests += 1
                    continue
                if getattr(event, "rep", None) != wire_rep:
                    continue  # a late frame of an earlier repetition, a stray HELLO or PONG: never progress
                seen = True
                if isinstance(event, Phase):
                    events.phases[event.phase] = event.ticks
                    if event.phase != PhaseMark.PREFILL_START:
                        arrived_ns[event.phase] = time.time_ns()
                    if event.phase == PhaseMark.DECODE_START:
                        self._phase_name = "decode"
                elif isinstance(event, Token):
                    self._check_token(event)
                    text = utf8.decode(self.model.token_bytes(prev, event.token_id))
                    prev = event.token_id
                    events.tokens.append(event)
                    events.texts.append(text)
                    token = TokenRecord(
                        repetition=rep, warmup=warmup, index=event.index, position=event.pos,
                        token_id=event.token_id, text=text, ticks=event.ticks,
                        device_ms=events.ms_since_start(event.ticks),
                    )
                    if self.target.power is None:
                        self._emit(token)
                    else:  # written with its energy once the repetition's power is known
                        held.append(token)
                elif isinstance(event, MemorySample):
                    if events.memory is not None:
                        continue  # sent again with a STATUS answer: the first one counts
                    recovered += answered
                    events.memory = event
                    self._emit(SampleRecord(kind="memory", repetition=rep, warmup=warmup, ticks=event.ticks, values={
                        "static_ram_bytes": event.static_ram_bytes, "arena_used_bytes": event.arena_used_bytes,
                        "stack_peak_bytes": event.stack_peak_bytes, "stack_total_bytes": event.stack_total_bytes,
                        "kv_cache_bytes": event.kv_cache_bytes,
                        "peak_ram_bytes": event.static_ram_bytes + event.arena_used_bytes + event.stack_peak_bytes,
                    }))
                elif isinstance(event, CpuUsage | Temperature | PowerReading):
                    events.device_telemetry.append(event)
                elif isinstance(event, Done):
                    recovered += answered  # after a STATUS answer, the DONE is the one sent again
                    events.done = event
                    self._runs_finished += 1
                    break
                else:
                    continue
                asks.restart()
                wait.progress(f"token {len(events.tokens)} of repetition {rep}" if len(events.tokens) < s.tokens
                              else f"the end (MEM, DONE) of repetition {rep}")
        except BaseException:
            for token in held:  # the link, a reset or the user ended it: its tokens still reach the file
                self._emit(token)
            raise
        missing = decoder.frames_lost + decoder.frames_corrupt - lost_before
        events.frames_missing = max(0, missing - recovered)
        shift = self._emulator.spec.icount_shift if self._emulator else None
        record = summarise_repetition(events, s, reference, instructions_per_tick=(
            None if shift is None else instructions_from_ticks(1, hello.timer_hz, shift)
        ))
        if restarted is not None:
            self._emit(BoardResetRecord(
                message=f"the board restarted during repetition {rep}, after {len(events.tokens)} of {s.tokens} "
                        "tokens; the repetition is invalid",
                repetition=rep, phase=self._phase_name, firmware_id=restarted.firmware_id,
            ))
            record = dataclasses.replace(record, valid=False, reasons=["board reset", *record.reasons])
        elif unheard:  # now the board is idle: its HELLO, to check it is still this session's
            self._rehandshake(self._wait_hello())
        for name, start, end in (("prefill", PhaseMark.PREFILL_START, PhaseMark.PREFILL_END),
                                 ("decode", PhaseMark.DECODE_START, PhaseMark.DECODE_END)):
            if start in events.phases and end in events.phases:
                self._emit(PhaseRecord(
                    name=name, start_unix_ns=arrived_ns[start], host_ms=(arrived_ns[end] - arrived_ns[start]) / 1e6,
                    repetition=rep, warmup=warmup,
                    device_ms=events.ms_between(events.phases[start], events.phases[end]),
                    start_ticks=events.phases[start], end_ticks=events.phases[end],
                ))
        record, extra = device_telemetry(record, events, emulated=self.emulated)
        if self.target.power is not None:
            try:
                record, more = with_telemetry(record, self.target.power, events, held)
            except ProfilerError:
                for token in held:  # the meter failed: the tokens still reach the file, without energy
                    self._emit(token)
                raise
            extra += more
        for item in [*extra, *over_temperature(record)]:
            self._emit(item)
        self._emit(record)
        events.record = record
        if restarted is not None:
            self._rehandshake(restarted)
        return events

    def _board_reset(self, rep: int, hello: Hello | None) -> None:
        """A reset noticed before any frame of repetition `rep`: recorded; the repetition is not cut short."""
        self._emit(BoardResetRecord(
            message=f"the board restarted before repetition {rep} began; the repetition runs on the restarted board",
            repetition=rep, phase=self._phase_name, firmware_id=hello.firmware_id if hello else "",
        ))
        if hello is not None:
            self._rehandshake(hello)

    def _rehandshake(self, hello: Hello) -> None:
        """After a reset: the board's boot HELLO must still be this session's firmware, board and model."""
        assert self._hello is not None
        self._check_model(hello)
        before = self._hello
        if (hello.firmware_id, hello.board, hello.timer_hz) != (before.firmware_id, before.board, before.timer_hz):
            raise FirmwareError(
                f"after its reset the board says it is {hello.board} with firmware {hello.firmware_id} at "
                f"{hello.timer_hz} Hz, not {before.board} / {before.firmware_id} / {before.timer_hz} Hz; "
                "check what is plugged in and re-run"
            )
        self._hello = hello
        self._runs_finished = 0

    def _check_token(self, token: Token) -> None:
        """A TOKEN whose fields no run can produce is a firmware or protocol fault, named by its field."""
        vocab = self.model.vocab_size
        if vocab and token.token_id >= vocab:
            raise ProtocolError(f"the board's TOKEN field token_id is {token.token_id}, outside the vocabulary "
                                f"of {vocab} of {self.model.name}; check that the board runs this model")
        if token.index >= self.settings.tokens:
            raise ProtocolError(f"the board's TOKEN field index is {token.index}, but only "
                                f"{self.settings.tokens} tokens were asked for; flash the firmware that ships "
                                "with this profiler")

    # -- quality check (run --check-quality) ----------------------------------

    def _check_quality(self) -> None:
        """The board's logits for a short text (EVAL), against the host reference and the fp32 model."""
        tokens = list(self.settings.quality_tokens)
        if not tokens or self.model.quality_check is None:
            return
        assert self._link is not None and self._hello is not None
        if not self._hello.capabilities & Capability.EVAL:
            raise FirmwareError("the board's firmware cannot send its logits (no EVAL capability); "
                                "flash the firmware of this profiler or drop --check-quality")
        with self._phase("quality"):
            rep = 0xFFFF  # never a repetition number
            self._link.send(MsgType.EVAL, eval_payload(rep, tokens))
            slices: dict[tuple[int, int], tuple[float, ...]] = {}
            wait = Wait("the board's logits", self.deadlines.frame_s)
            for event in self._events(wait):
                if isinstance(event, Boot):
                    raise LinkError("the board restarted (HELLO with sequence 0) during the quality check; "
                                    "check its power supply and re-run")
                if isinstance(event, Logits) and event.rep == rep:
                    wait.progress()
                    slices[(event.pos, event.offset)] = event.values
                elif isinstance(event, Done) and event.rep == rep:
                    break
            rows = [[v for (pos, _), values in sorted(slices.items()) if pos == p for v in values]
                    for p in range(len(tokens))]
            if len({len(row) for row in rows}) != 1 or not rows[0]:
                raise ProtocolError(f"the board sent incomplete logits for {len(tokens)} positions; "
                                    "rebuild the firmware and check the link")
            self._quality = self.model.quality_check(tokens, rows, self._fixed_point())

    def _with_quality(self, summary: SummaryRecord) -> SummaryRecord:
        """The summary with the quality check's figures; logits unlike the host's make it invalid."""
        check = self._quality
        if check is None:
            return summary
        changes: dict[str, Any] = {"quality": check.to_dict(),
                                   "quantization_error_rate": check.report.quantization_error_rate}
        if not check.logits_match_reference:
            changes.update(valid=False, status="invalid" if summary.status == "ok" else summary.status,
                           reasons=[*summary.reasons, f"quality check: the board's logits differ from the host "
                                    f"reference at position {check.first_mismatch}"])
        return dataclasses.replace(summary, **changes)

    def _trace_if_predicting(self, emulator: QemuBoard, elf: Path) -> None:
        """With `predict`, load the trace plugin: it records the first repetition's forward passes."""
        from profiler import cycles

        board, s = self.target.board, self.settings
        if not s.predict or not cycles.supported(board):
            return
        self._trace_dir = tempfile.TemporaryDirectory(prefix="tiny-profiler-trace-")
        args = cycles.qemu_trace_args(board, elf, Path(self._trace_dir.name) / "exec.trace",
                                      len(s.prompt_tokens), s.tokens)
        emulator.spec = dataclasses.replace(emulator.spec, extra_args=(*emulator.spec.extra_args, *args))

    def _with_prediction(self, summary: SummaryRecord) -> SummaryRecord:
        """Emulated runs: the one-instruction-per-cycle bound and, when traced, the predicted rate."""
        ipt, hello = summary.decode_instructions_per_token, self._hello
        if not self.emulated or ipt is None or hello is None:
            return summary
        changes: dict[str, Any] = {"ipc1_decode_tokens_per_s": hello.clock_hz / ipt}
        if self.settings.predict:
            changes.update(self._prediction(ipt, hello.clock_hz))
        return dataclasses.replace(summary, **changes)

    def _prediction(self, ipt: float, clock_hz: int) -> dict[str, Any]:
        from profiler import cycles

        board, s, fw = self.target.board, self.settings, self.target.firmware
        if not cycles.supported(board):
            return {"prediction_note": f"no cycle model for the {board.core} core"}
        if self._trace_dir is None or fw is None:
            return {"prediction_note": "only boards the profiler emulates itself are traced"}
        try:
            found = cycles.predict_decode(board, fw.elf, Path(self._trace_dir.name) / "exec.trace",
                                          len(s.prompt_tokens), s.tokens)
        except (ProfilerError, OSError, KeyError) as exc:
            return {"prediction_note": f"the trace could not be read: {exc}"}
        finally:
            self._trace_dir.cleanup()
        if found is None:
            return {"prediction_note": "a prediction needs at least 3 tokens (2 bounded decode steps)"}
        # the traced cycles per instruction, applied to the tick-exact instructions per token
        scale = ipt / found.instructions_per_step
        cycles_per_token = found.cycles_per_step * scale
        return {
            "predicted_cycles_per_token": cycles_per_token,
            "predicted_decode_tokens_per_s": clock_hz / cycles_per_token,
            "cycle_model": found.model,
            "predicted_cycles_per_token_by_part": {k: round(v * scale, 1)
                                                   for k, v in found.cycles_per_step_by_part.items()},
        }

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
