"""Traces, metrics and logs of real emulated sessions, checked at real receivers on loopback.

The pushgateway is Debian's prometheus-pushgateway binary; the OTLP receiver is a small
HTTP server here that decodes the real OTLP protobuf payload.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI
from tests.processes import free_port

pytestmark = pytest.mark.qemu
PHASES = {"profile_session", "flash", "device_connection", "model_loading", "warmup", "prefill", "decode", "teardown"}
# bcrypt of "lab-secret-42": the pushgateway's web config wants a hash, the profiler the password.
AUTH_HASH = "$2b$04$QWdEVsZojWl7FmtpK8XTqueKPASAsyIYfezEtG95vpX2hCzKSxq.6"



def _start_pushgateway(tmp_path: Path, web_config: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    assert binary, "prometheus-pushgateway is installed by `make test` (Debian package prometheus-pushgateway)"
    port = free_port()
    args = [binary, f"--web.listen-address=127.0.0.1:{port}"]
    if web_config:
        config = tmp_path / "web.yml"
        config.write_text(web_config)
        args.append(f"--web.config.file={config}")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("pushgateway did not start")


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    proc, url = _start_pushgateway(tmp_path)
    yield url
    proc.terminate()
    proc.wait()


class _OtlpReceiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint: decodes ExportTraceServiceRequest protobufs."""

    requests: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).requests.append(request)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    handler = type("Receiver", (_OtlpReceiver,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    server.shutdown()
    server.server_close()


def _run(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, "run", "--device", "stm32", "--model", "demo", "--out", str(tmp_path / "out"),
            "--log-file", str(tmp_path / "log.jsonl"), "--json", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)


def _session_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.jsonl") if not p.name.endswith(".trace.jsonl"))


def _gateway_samples(url: str) -> list:  # type: ignore[type-arg]
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _check_tree(spans: list[dict]) -> dict:  # type: ignore[type-arg]
    """Exactly one root, named profile_session, and every span descends from it."""
    by_id = {s["context"]["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["profile_session"]
    for span in spans:
        node = span
        while node["parent_id"] is not None:
            node = by_id[node["parent_id"]]
        assert node is roots[0]
    assert PHASES <= {s["name"] for s in spans}
    return roots[0]


def test_session_reaches_pushgateway_otlp_trace_file_and_log(
    tmp_path: Path, pushgateway: str, otlp_receiver: tuple[str, list], firmware_image: object  # type: ignore[type-arg]
) -> None:
    otlp_url, requests = otlp_receiver
    result = _run(tmp_path, "--pushgateway", pushgateway, "--otlp-endpoint", otlp_url)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    summary = json.loads(result.stdout)
    samples = _gateway_samples(pushgateway)
    (decode,) = [s for s in samples if s.name == "model_tokens_per_second" and s.labels["phase"] == "decode"]
    assert decode.value == summary["decode_tokens_per_s"]
    assert decode.labels == {"job": "tiny-profiler", "instance": socket.gethostname(), "device": "stm32f405",
                             "platform": "stm32", "device_id": "stm32f405", "model_name": "demo",
                             "quantization": "int8", "phase": "decode"}
    assert any(s.name == "push_time_seconds" for s in samples)
    assert any(s.name == "profiling_last_success_timestamp_seconds" for s in samples)

    (trace_file,) = (tmp_path / "out").glob("*.trace.jsonl")
    spans = [json.loads(line) for line in trace_file.read_text().splitlines()]
    root = _check_tree(spans)
    assert root["attributes"]["platform"] == "stm32" and root["attributes"]["model.name"] == "demo"
    assert root["attributes"]["decode_tokens_per_s"] == summary["decode_tokens_per_s"]
    assert root["resource"]["attributes"]["service.name"] == "tiny-profiler"
    decodes = [s for s in spans if s["name"] == "decode"]
    assert len(decodes) == 6 and all(s["attributes"]["timing"] == "device" for s in decodes)
    records = read_jsonl(_session_files(tmp_path / "out")[0])
    device_ms = [r["device_ms"] for r in records if r["type"] == "phase" and r["name"] == "decode"]
    assert sorted(s["attributes"]["device_ms"] for s in decodes) == sorted(device_ms)

    received = [span for req in requests for rs in req.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert len(received) == len(spans)
    assert {s.span_id.hex() for s in received} == {s["context"]["span_id"][2:] for s in spans}
    otlp_root = next(s for s in received if not s.parent_span_id)
    assert otlp_root.name == "profile_session"
    attributes = {a.key: a.value for a in otlp_root.attributes}
    assert attributes["board"].string_value == "stm32f405"

    log_lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log_lines and all(line["session_id"] == records[0]["session_id"] for line in log_lines)
    assert {"session started", "session finished"} <= {line["message"] for line in log_lines}


def test_pushgateway_down_warns_once_and_strict_fails(tmp_path: Path, firmware_image: object) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = _run(tmp_path, "--pushgateway", dead)
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "pushgateway" in warnings[0], result.stderr
    files = _session_files(tmp_path / "out")
    assert read_jsonl(files[0])[-1]["status"] == "ok"
    strict = _run(tmp_path, "--pushgateway", dead, "--strict-export")
    assert strict.returncode == 11 and "pushgateway" in strict.stderr
    files = _session_files(tmp_path / "out")
    assert len(files) == 2 and all(read_jsonl(f)[-1]["type"] == "summary" for f in files)


def test_basic_auth_from_environment_never_logged(tmp_path: Path, firmware_image: object) -> None:
    proc, url = _start_pushgateway(tmp_path, f"basic_auth_users:\n  lab: {AUTH_HASH}\n")
    try:
        env = {**os.environ, "TINY_PROFILER_PUSHGATEWAY_USERNAME": "lab",
               "TINY_PROFILER_PUSHGATEWAY_PASSWORD": "wrong"}
        refused = _run(tmp_path, "--pushgateway", url, env=env)
        assert refused.returncode == 0 and "Unauthorized" in refused.stderr
        env["TINY_PROFILER_PUSHGATEWAY_PASSWORD"] = "lab-secret-42"
        accepted = _run(tmp_path, "--pushgateway", url, env=env)
        assert accepted.returncode == 0 and "warning" not in accepted.stderr
        request = urllib.request.Request(f"{url}/metrics")
        request.add_header("Authorization", "Basic bGFiOmxhYi1zZWNyZXQtNDI=")  # lab:lab-secret-42
        text = urllib.request.urlopen(request, timeout=5).read().decode()
        assert 'model_tokens_per_second{device="stm32f405"' in text
        for output in (refused.stderr, accepted.stderr, (tmp_path / "log.jsonl").read_text()):
            assert "lab-secret-42" not in output and "wrong" not in output.replace("went wrong", "")
    finally:
        proc.terminate()
        proc.wait()


def test_live_metrics_while_running_and_trace_flushed_on_ctrl_c(tmp_path: Path, firmware_image: object) -> None:
    port = free_port()
    proc = subprocess.Popen([*CLI, "run", "--device", "stm32", "--model", "demo", "--repeat", "100",
                             "--out", str(tmp_path / "out"), "--log-file", str(tmp_path / "log.jsonl"),
                             "--metrics-port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, live = time.monotonic() + 120, None
        while time.monotonic() < deadline and live is None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                text = ""
            families = {f.name: f for f in text_string_to_metric_families(text)}
            family = families.get("model_tokens_per_second")
            if family and family.samples:
                live = family.samples[0]
            time.sleep(0.1)
        assert live is not None and live.value > 0 and live.labels["phase"] == "decode"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 130
    (trace_file,) = (tmp_path / "out").glob("*.trace.jsonl")
    root = _check_tree([json.loads(line) for line in trace_file.read_text().splitlines()])
    assert root["status"]["status_code"] == "ERROR"
    assert root["events"][0]["attributes"]["exception.type"] == "interrupted"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
