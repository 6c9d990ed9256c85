"""The repetitions of a session: one RUN each, its frames turned into records, a reset noticed and recorded."""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import time
from typing import Any

from profiler.emulator import instructions_from_ticks
from profiler.errors import ProfilerError
from profiler.link.protocol import (
    STATUS_DONE,
    STATUS_IDLE,
    Boot,
    CpuUsage,
    Done,
    Hello,
    MemorySample,
    MsgType,
    Phase,
    PhaseMark,
    PowerReading,
    Status,
    Temperature,
    Token,
    run_payload,
    status_request_payload,
)
from profiler.link.transport import ASK_MAX_S, Backoff, Wait
from profiler.measure import RepetitionEvents, summarise_repetition
from profiler.power.telemetry import device_telemetry, over_temperature, with_telemetry
from profiler.records import BoardResetRecord, PhaseRecord, SampleRecord, TokenRecord
from profiler.run.checks import Checks
from profiler.run.handshake import STATUS_AFTER_S


class Repetitions(Checks):
    """Warmup and measured repetitions: RUN, the frames each owes, asking again, resets, the records."""

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
                    prev = events.tokens[-1].token_id if events.tokens else s.prompt_tokens[-1]
                    text = utf8.decode(self.model.token_bytes(prev, event.token_id))
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
