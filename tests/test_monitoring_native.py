"""The native monitoring stack (`make monitor-start` without Docker): Debian's prometheus, pushgateway and
alertmanager started by scripts/monitor_native.py on free loopback ports, fed by a real emulated run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from profiler.sinks.prometheus import exported_metric_names
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from make_dashboards import DASHBOARDS  # noqa: E402
from monitor_native import PROGRAMS, Ports, start, stop  # noqa: E402
from test_monitoring import PUSHGATEWAY_SERIES, metric_names  # noqa: E402

pytestmark = pytest.mark.qemu
# Pushed only by a session that failed (labelled by the error's kind); a valid run has none.
ONLY_ON_FAILURE = {"profiling_errors_total"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    state = tmp_path / "monitoring"
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    urls = start(state, ports, scrape_interval="1s", evaluation_interval="1s")  # seconds, not the lab's 15 s
    try:
        yield state, urls
    finally:
        stop(state)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.loads(reply.read())


def _eventually(probe: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    reply = _get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert reply["status"] == "success"
    return list(reply["data"]["result"])


def test_run_metrics_and_alerts_reach_prometheus_and_alertmanager(
    tmp_path: Path, stack: tuple[Path, dict[str, str]], firmware_image: object
) -> None:
    state, urls = stack
    prometheus, gateway, alertmanager = urls["prometheus"], urls["pushgateway"], urls["alertmanager"]
    run = subprocess.run([sys.executable, "-m", "profiler.cli", "run", "--device", "stm32", "--model", "demo",
                          "--tokens", "8", "--check-quality", "--out", str(tmp_path / "out"),
                          "--log-file", str(tmp_path / "log.jsonl"), "--pushgateway", gateway, "--json"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    series = _eventually(lambda: _query(prometheus, 'model_tokens_per_second{phase="decode"}'),
                         "model_tokens_per_second in Prometheus")
    assert len(series) == 1 and series[0]["metric"]["model_name"] == "demo"
    assert float(series[0]["value"][1]) == pytest.approx(summary["decode_tokens_per_s"], rel=1e-6)

    # Every metric a dashboard panel names is one this run really pushed (or one only failures push).
    assert ONLY_ON_FAILURE <= exported_metric_names()
    pushed = set(_get(f"{prometheus}/api/v1/label/__name__/values?match[]=" +
                      urllib.parse.quote('{job="tiny-profiler"}'))["data"])
    for name in DASHBOARDS:
        dashboard = json.loads((ROOT / "monitoring" / "grafana" / "dashboards" / name).read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        for expr in exprs:
            assert metric_names(expr) <= pushed | PUSHGATEWAY_SERIES | ONLY_ON_FAILURE, f"{name}: {expr!r}: not pushed"

    # A synthetic failed session (its own grouping key, beside the real one): monitoring/alerts.yml's
    # ProfilingSessionFailed has no `for`, so one evaluation makes it active in Prometheus, then alertmanager.
    push = urllib.request.Request(f"{gateway}/metrics/job/tiny-profiler/instance/ci/device/synthetic",
                                  data=b'profiling_errors_total{platform="stm32",device_id="synthetic"} 1\n',
                                  method="PUT")
    urllib.request.urlopen(push, timeout=5).close()

    def firing_in_prometheus() -> list[dict[str, Any]]:
        return [a for a in _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
                if a["labels"]["alertname"] == "ProfilingSessionFailed" and a["state"] == "firing"]

    alert = _eventually(firing_in_prometheus, "ProfilingSessionFailed firing in Prometheus")[0]
    assert alert["labels"]["device_id"] == "synthetic"

    def active_in_alertmanager() -> list[dict[str, Any]]:
        return [a for a in _get(f"{alertmanager}/api/v2/alerts")
                if a["labels"]["alertname"] == "ProfilingSessionFailed" and a["status"]["state"] == "active"]

    received = _eventually(active_in_alertmanager, "ProfilingSessionFailed active in alertmanager")
    assert received[0]["labels"]["device_id"] == "synthetic"

    pids = [int((state / f"{program.name}.pid").read_text()) for program in PROGRAMS]
    stop(state)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not list(state.glob("*.pid"))
