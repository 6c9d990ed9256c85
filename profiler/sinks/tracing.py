"""OpenTelemetry spans of a session: one trace per session, written next to its JSONL.

Spans are built when the session ends, from the phase records, because the
device-side phases (prefill, decode) take their duration from device ticks,
which are only known once the markers arrive. Every span goes to
`<session>.trace.jsonl`, one span per line, and over OTLP/HTTP when an
endpoint is configured (`--otlp-endpoint` or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from profiler import __version__
from profiler.errors import ExportError
from profiler.outputs import results_error
from profiler.records import ErrorRecord, PhaseRecord, Record, SessionHeader, SummaryRecord
from profiler.sinks import SinkContext, SinkKind, SinkOption, http_url_check

_DEVICE_PHASES = {"prefill", "decode"}
_EXPORT_TIMEOUT_S = 5.0


def otlp_traces_endpoint(explicit: str | None) -> str | None:
    """The OTLP/HTTP traces URL from `--otlp-endpoint` or the standard environment variables."""
    if explicit:
        base = explicit.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    return None


class TraceSink:
    """Collects a session's records and turns them into spans when it closes."""

    def __init__(self, path: Path, otlp_endpoint: str | None, strict: bool, warn: Callable[[str], None]) -> None:
        self.path = path
        self.otlp_endpoint = otlp_endpoint
        self.strict = strict
        self.warn = warn
        self._header: SessionHeader | None = None
        self._phases: list[PhaseRecord] = []
        self._error: ErrorRecord | None = None
        self._summary: SummaryRecord | None = None
        self._closed = False

    def emit(self, record: Record) -> None:
        if isinstance(record, SessionHeader):
            self._header = record
        elif isinstance(record, PhaseRecord):
            self._phases.append(record)
        elif isinstance(record, ErrorRecord):
            self._error = record
        elif isinstance(record, SummaryRecord):
            self._summary = record

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        spans = self._build()
        text = "".join(span.to_json(indent=None) + "\n" for span in spans)
        try:
            self.path.write_text(text, encoding="utf-8")
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.unlink()  # half a trace file would read as a different trace
            raise results_error(self.path, exc) from None
        if self.otlp_endpoint:
            self._export(spans)

    # -- building ----------------------------------------------------------

    def _resource(self) -> Resource:
        return Resource.create({
            "service.name": "tiny-profiler",
            "service.version": __version__,
            "host.name": self._header.host if self._header else socket.gethostname(),
        })

    def _root_attributes(self) -> dict[str, Any]:
        h, s = self._header, self._summary
        attributes: dict[str, Any] = {}
        if h is not None:
            attributes.update({
                "session.id": h.session_id, "platform": h.platform, "board": h.board, "device.id": h.device,
                "model.name": h.model, "model.sha256": h.model_sha256, "quantization": h.quantization,
                "firmware.id": h.firmware_id, "emulated": h.emulated, "tokens": h.tokens,
                "repetitions": h.repetitions, "clock_hz": h.clock_hz,
            })
        if s is not None:
            attributes["status"] = s.status
            attributes["valid"] = s.valid
            for key in ("decode_tokens_per_s", "prefill_tokens_per_s", "ttft_ms", "peak_ram_bytes"):
                value = getattr(s, key)
                if value is not None:
                    attributes[key] = value
        return attributes

    def _build(self) -> list[ReadableSpan]:
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=self._resource())
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer("tiny-profiler", __version__)
        now = time.time_ns()
        bounds = [self._bounds(p) for p in self._phases]
        start = min((b[0] for b in bounds), default=now)
        end = max([now, *(b[1] for b in bounds)])
        root = tracer.start_span("profile_session", start_time=start, attributes=self._root_attributes())
        root_ctx = trace.set_span_in_context(root)
        warmup = next((p for p in self._phases if p.name == "warmup"), None)
        warmup_span = None
        if warmup is not None:
            warmup_span = tracer.start_span("warmup", context=root_ctx, start_time=self._bounds(warmup)[0],
                                            attributes={"host_ms": warmup.host_ms})
        for phase, (p_start, p_end) in zip(self._phases, bounds, strict=True):
            if phase is warmup:
                continue
            parent = trace.set_span_in_context(warmup_span) if phase.warmup and warmup_span else root_ctx
            span = tracer.start_span(phase.name, context=parent, start_time=p_start, attributes=self._attributes(phase))
            if self._error is not None and self._error.phase == phase.name and phase is self._last_named(phase.name):
                span.set_status(Status(StatusCode.ERROR, self._error.message))
            span.end(end_time=p_end)
        if warmup_span is not None and warmup is not None:
            warmup_span.end(end_time=self._bounds(warmup)[1])
        if self._error is not None:
            root.add_event("exception", {
                "exception.type": self._error.kind, "exception.message": self._error.message,
            })
            root.set_status(Status(StatusCode.ERROR, self._error.message))
        elif self._summary is not None and not self._summary.valid:
            root.set_status(Status(StatusCode.ERROR, "; ".join(self._summary.reasons)[:500]))
        root.end(end_time=end)
        provider.shutdown()
        return list(memory.get_finished_spans())

    def _last_named(self, name: str) -> PhaseRecord | None:
        return next((p for p in reversed(self._phases) if p.name == name), None)

    @staticmethod
    def _bounds(phase: PhaseRecord) -> tuple[int, int]:
        # Device phases last as long as the device says; host phases as long as the host saw.
        duration_ms = phase.device_ms if phase.name in _DEVICE_PHASES and phase.device_ms is not None else phase.host_ms
        return phase.start_unix_ns, phase.start_unix_ns + int(duration_ms * 1e6)

    @staticmethod
    def _attributes(phase: PhaseRecord) -> dict[str, Any]:
        attributes: dict[str, Any] = {"host_ms": phase.host_ms, "timing": "host"}
        if phase.repetition is not None:
            attributes["repetition"] = phase.repetition
            attributes["warmup"] = phase.warmup
        if phase.device_ms is not None:
            attributes.update({"device_ms": phase.device_ms, "timing": "device"})
        if phase.start_ticks is not None and phase.end_ticks is not None:
            attributes.update({"device.start_ticks": phase.start_ticks, "device.end_ticks": phase.end_ticks})
        return attributes

    # -- exporting ---------------------------------------------------------

    def _export(self, spans: list[ReadableSpan]) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=self.otlp_endpoint, timeout=_EXPORT_TIMEOUT_S)
        otel_logger = logging.getLogger("opentelemetry")
        level = otel_logger.level
        otel_logger.setLevel(logging.CRITICAL)  # we say it once, in our own words
        try:
            result = exporter.export(spans)
        except Exception as exc:  # the exporter may raise on malformed URLs
            result = SpanExportResult.FAILURE
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = "the endpoint did not accept the spans"
        finally:
            otel_logger.setLevel(level)
            exporter.shutdown()
        if result != SpanExportResult.SUCCESS:
            message = (f"OTLP export to {self.otlp_endpoint} failed ({reason}); spans are in {self.path}; "
                       "check the collector or drop --otlp-endpoint")
            if self.strict:
                raise ExportError(message)
            self.warn(message)


def trace_path(jsonl_path: Path) -> Path:
    """The trace file that sits next to a session's JSONL."""
    return jsonl_path.with_name(jsonl_path.stem + ".trace.jsonl")


def _build(values: Mapping[str, Any], context: SinkContext) -> TraceSink:
    # always on: the trace file; spans also go to an OTLP endpoint when one is set
    return TraceSink(trace_path(context.jsonl_path), otlp_traces_endpoint(values["otlp_endpoint"]), context.strict,
                     context.warn)


SINK = SinkKind("trace", (SinkOption("otlp_endpoint", None, http_url_check("--otlp-endpoint")),), _build)
