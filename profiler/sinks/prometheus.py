"""Prometheus metrics of a session: pushed to a pushgateway, served on /metrics, or both.

Pushgateway semantics (the pushgateway's guidance for batch jobs):
- grouping key `job="tiny-profiler", instance=<host name>, device=<board>`: one
  group per board per runner, so boards never overwrite each other;
- during a long session the sink pushes with POST (pushadd) at most every
  `interval_s`: it replaces the metrics it sends and keeps the others;
- a successful session ends with PUT (push), replacing the whole group with
  this session's state, including `profiling_last_success_timestamp_seconds`;
- a failed or interrupted session ends with POST, so the previous
  `profiling_last_success_timestamp_seconds` survives for staleness alerts;
- counters count within one session (the pushgateway is not an aggregator);
  count sessions over time in Prometheus from `push_time_seconds`, e.g.
  `changes(push_time_seconds{job="tiny-profiler"}[1d])`.
Credentials come from TINY_PROFILER_PUSHGATEWAY_USERNAME/_PASSWORD and are never logged.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import (
    basic_auth_handler,
    default_handler,
    push_to_gateway,
    pushadd_to_gateway,
    start_http_server,
)

from profiler.errors import ConfigError, ExportError
from profiler.records import ErrorRecord, Record, RepetitionRecord, SampleRecord, SessionHeader, SummaryRecord
from profiler.sinks import SinkContext, SinkKind, SinkOption, http_url_check

JOB = "tiny-profiler"
disable_created_metrics()  # *_created series only add cardinality to pushed groups
_MODEL_LABELS = ("platform", "device_id", "model_name", "quantization")
_DEVICE_LABELS = ("platform", "device_id")


@dataclass
class Metrics:
    """Every metric the profiler exports; the monitoring assets may name only these."""

    sessions: Counter
    duration: Histogram
    errors: Counter
    connection: Gauge
    tokens_per_second: Gauge
    latency_p95: Gauge
    latency_p50: Gauge
    ttft: Gauge
    model_memory_kb: Gauge
    device_memory: Gauge
    power: Gauge
    temperature: Gauge
    cpu: Gauge
    quantization_error: Gauge
    last_success: Gauge
    valid: Gauge


def build_metrics(registry: CollectorRegistry) -> Metrics:
    """Register the profiler's metrics in `registry`."""
    return Metrics(
        sessions=Counter("profiling_sessions", "Profiling sessions finished, by status",
                         (*_MODEL_LABELS, "status"), registry=registry),
        duration=Histogram("profiling_duration_seconds", "Wall time of a profiling session", _DEVICE_LABELS,
                           buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600), registry=registry),
        errors=Counter("profiling_errors", "Sessions that stopped early, by kind", (*_DEVICE_LABELS, "kind"),
                       registry=registry),
        connection=Gauge("device_connection_status", "1 while the board answers, 0 after it was lost",
                         _DEVICE_LABELS, registry=registry),
        tokens_per_second=Gauge("model_tokens_per_second", "Device-timed tokens per second (median)",
                                (*_MODEL_LABELS, "phase"), registry=registry),
        latency_p95=Gauge("model_latency_p95_ms", "95th percentile of decode token latency, device time",
                          _MODEL_LABELS, registry=registry),
        latency_p50=Gauge("model_latency_p50_ms", "Median decode token latency, device time",
                          _MODEL_LABELS, registry=registry),
        ttft=Gauge("model_time_to_first_token_ms", "Time to first token (prefill), device time",
                   _MODEL_LABELS, registry=registry),
        model_memory_kb=Gauge("model_memory_usage_kb", "RAM the model's buffers take on the board (KiB)",
                              _MODEL_LABELS, registry=registry),
        device_memory=Gauge("device_memory_usage_bytes", "Board RAM by kind: static, arena, stack, peak, total",
                            (*_DEVICE_LABELS, "kind"), registry=registry),
        power=Gauge("device_power_consumption_mw", "Average board power during decode", _DEVICE_LABELS,
                    registry=registry),
        temperature=Gauge("device_temperature_celsius", "Board temperature", _DEVICE_LABELS, registry=registry),
        cpu=Gauge("device_cpu_utilization_percent", "Share of device ticks the CPU computed, by phase",
                  (*_DEVICE_LABELS, "phase"), registry=registry),
        quantization_error=Gauge("quantization_error_rate", "Top-1 disagreement with the fp32 reference",
                                 _MODEL_LABELS, registry=registry),
        last_success=Gauge("profiling_last_success_timestamp_seconds", "Unix time of the last valid session",
                           _DEVICE_LABELS, registry=registry),
        valid=Gauge("profiling_session_valid", "1 if the last session was valid", _MODEL_LABELS, registry=registry),
    )


def exported_metric_names() -> set[str]:
    """Names as Prometheus sees them (with _total, _bucket, ... suffixes)."""
    registry = CollectorRegistry()
    build_metrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
    names.update({"profiling_sessions_total", "profiling_errors_total"})
    for base in ("profiling_duration_seconds",):
        names.update({f"{base}_bucket", f"{base}_count", f"{base}_sum"})
    return names


def _redact(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class PrometheusSink:
    """Keeps the metrics current as records arrive; pushes and/or serves them."""

    def __init__(
        self,
        pushgateway: str | None,
        metrics_port: int | None,
        strict: bool,
        warn: Callable[[str], None],
        interval_s: float = 15.0,
        metrics_addr: str = "0.0.0.0",
    ) -> None:
        self.pushgateway = pushgateway
        self.strict = strict
        self.warn = warn
        self.interval_s = interval_s
        self.registry = CollectorRegistry()
        self.metrics = build_metrics(self.registry)
        self._labels: dict[str, str] = {}
        self._device: dict[str, str] = {}
        self._grouping: dict[str, str] = {}
        self._started = time.monotonic()
        self._last_push = time.monotonic()
        self._push_failed = False
        self._succeeded = False
        self._server: Any = None
        if metrics_port is not None:
            try:
                self._server, _thread = start_http_server(metrics_port, addr=metrics_addr, registry=self.registry)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve /metrics on port {metrics_port}: {exc.strerror}; choose another --metrics-port"
                ) from None

    # -- records -> metrics --------------------------------------------------

    def emit(self, record: Record) -> None:
        m = self.metrics
        if isinstance(record, SessionHeader):
            self._device = {"platform": record.platform, "device_id": record.device}
            self._labels = {**self._device, "model_name": record.model, "quantization": record.quantization}
            self._grouping = {"instance": record.host or socket.gethostname(), "device": record.device}
            m.connection.labels(**self._device).set(1)
            if record.ram_total_bytes:
                m.device_memory.labels(**self._device, kind="total").set(record.ram_total_bytes)
        elif isinstance(record, RepetitionRecord) and not record.warmup and self._labels:
            if record.decode_tokens_per_s is not None and record.valid:
                m.tokens_per_second.labels(**self._labels, phase="decode").set(record.decode_tokens_per_s)
        elif isinstance(record, SampleRecord) and self._device:
            self._sample(record)
        elif isinstance(record, ErrorRecord) and self._device:
            m.errors.labels(**self._device, kind=record.kind).inc()
            if record.kind in ("disconnect", "timeout"):
                m.connection.labels(**self._device).set(0)
        elif isinstance(record, SummaryRecord) and self._labels:
            self._summary(record)
        if self.pushgateway and time.monotonic() - self._last_push >= self.interval_s:
            self._push(final=False)

    def _sample(self, record: SampleRecord) -> None:
        values = record.values
        if record.kind == "memory":
            for kind, key in (("static", "static_ram_bytes"), ("arena", "arena_used_bytes"),
                              ("stack", "stack_peak_bytes"), ("peak", "peak_ram_bytes")):
                if key in values:
                    self.metrics.device_memory.labels(**self._device, kind=kind).set(values[key])
        elif record.kind == "power" and "power_mw" in values:
            self.metrics.power.labels(**self._device).set(values["power_mw"])
        elif record.kind == "temperature" and "temp_c" in values:
            self.metrics.temperature.labels(**self._device).set(values["temp_c"])
        elif record.kind == "cpu":
            for phase in ("prefill", "decode"):
                if f"{phase}_utilization_percent" in values:
                    self.metrics.cpu.labels(**self._device, phase=phase).set(values[f"{phase}_utilization_percent"])

    def _summary(self, s: SummaryRecord) -> None:
        m, labels = self.metrics, self._labels
        m.sessions.labels(**labels, status=s.status).inc()
        m.duration.labels(**self._device).observe(time.monotonic() - self._started)
        m.valid.labels(**labels).set(1 if s.valid else 0)
        figures = (
            (m.tokens_per_second.labels(**labels, phase="decode"), s.decode_tokens_per_s),
            (m.tokens_per_second.labels(**labels, phase="prefill"), s.prefill_tokens_per_s),
            (m.latency_p95.labels(**labels), s.token_latency_ms_p95),
            (m.latency_p50.labels(**labels), s.token_latency_ms_p50),
            (m.ttft.labels(**labels), s.ttft_ms),
        )
        for gauge, value in figures:
            if value is not None:
                gauge.set(value)
        if s.arena_used_bytes is not None:
            m.model_memory_kb.labels(**labels).set(s.arena_used_bytes / 1024)
        if s.quantization_error_rate is not None:
            m.quantization_error.labels(**labels).set(s.quantization_error_rate)
        if s.valid:
            m.last_success.labels(**self._device).set(time.time())
            self._succeeded = True

    # -- pushing -------------------------------------------------------------

    def _handler(self) -> Callable[..., Callable[[], None]]:
        username = os.environ.get("TINY_PROFILER_PUSHGATEWAY_USERNAME")
        password = os.environ.get("TINY_PROFILER_PUSHGATEWAY_PASSWORD")
        if not username:
            return default_handler

        def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                    data: bytes) -> Callable[[], None]:
            return basic_auth_handler(url, method, timeout, headers, data, username, password)

        return handler

    def _push(self, final: bool) -> None:
        assert self.pushgateway is not None
        self._last_push = time.monotonic()
        if not self._grouping or (self._push_failed and not final):
            return
        push = push_to_gateway if final and self._succeeded else pushadd_to_gateway
        try:
            push(self.pushgateway, job=JOB, registry=self.registry, grouping_key=self._grouping,
                 timeout=5, handler=self._handler())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self._push_failed = True
            if not final:
                return  # the final push retries and reports once
            reason = getattr(exc, "reason", None) or exc
            message = (f"pushgateway {_redact(self.pushgateway)} did not take the metrics ({reason}); "
                       "results are in the JSONL; check the URL or drop --pushgateway")
            if self.strict:
                raise ExportError(message) from None
            self.warn(message)

    def close(self) -> None:
        try:
            if self.pushgateway:
                self._push(final=True)
        finally:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None


def _check_port(port: Any) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(f"--metrics-port {port} is not a TCP port; use 1..65535 (or 0 for any free port)")


def _build(values: Mapping[str, Any], context: SinkContext) -> PrometheusSink | None:
    if not values["pushgateway"] and values["metrics_port"] is None:
        return None
    return PrometheusSink(values["pushgateway"], values["metrics_port"], context.strict, context.warn,
                          interval_s=values["push_interval_s"])


SINK = SinkKind("prometheus", (
    SinkOption("pushgateway", None, http_url_check("--pushgateway")),
    SinkOption("metrics_port", None, _check_port),
    SinkOption("push_interval_s", 15.0),
), _build)
