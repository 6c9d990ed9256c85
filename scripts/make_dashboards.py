"""Write the Grafana dashboards in monitoring/grafana/dashboards (`make monitor-dashboards`).

Dashboards are generated so every panel follows one layout and a test can
check that each PromQL expression names only metrics the profiler exports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "monitoring" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SELECTOR = 'platform=~"$platform", device_id=~"$device"'


def _variables() -> dict[str, Any]:
    def var(name: str, query: str) -> dict[str, Any]:
        return {"name": name, "type": "query", "datasource": DATASOURCE, "query": query, "refresh": 2,
                "includeAll": True, "multi": True, "current": {"text": "All", "value": "$__all"}}
    return {"list": [var("platform", "label_values(device_connection_status, platform)"),
                     var("device", 'label_values(device_connection_status{platform=~"$platform"}, device_id)')]}


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int, kind: str = "timeseries",
           w: int = 12, h: int = 8) -> dict[str, Any]:
    return {
        "id": pid, "type": kind, "title": title, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(exprs)],
    }


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {"uid": uid, "title": title, "tags": ["tiny-profiler"], "timezone": "utc", "schemaVersion": 39,
            "version": 1, "refresh": "30s", "time": {"from": "now-24h", "to": "now"},
            "templating": _variables(), "panels": panels}


def main_profiling() -> dict[str, Any]:
    """Throughput, latency, sessions and model memory per board and model."""
    s = SELECTOR
    return _dashboard("tiny-profiler-main", "Main Profiling", [
        _panel(1, "Decode tokens/s (device-timed)",
               [(f'model_tokens_per_second{{{s}, phase="decode"}}', "{{device_id}} {{model_name}} {{quantization}}")],
               "none", 0, 0),
        _panel(2, "Prefill tokens/s", [(f'model_tokens_per_second{{{s}, phase="prefill"}}',
                                        "{{device_id}} {{model_name}}")], "none", 12, 0),
        _panel(3, "Token latency p50 / p95 (ms)", [(f"model_latency_p50_ms{{{s}}}", "p50 {{device_id}} {{model_name}}"),
                                                  (f"model_latency_p95_ms{{{s}}}", "p95 {{device_id}} {{model_name}}")],
               "ms", 0, 8),
        _panel(4, "Time to first token (ms)",
               [(f"model_time_to_first_token_ms{{{s}}}", "{{device_id}} {{model_name}}")], "ms", 12, 8),
        _panel(5, "Sessions by status (pushes per hour)",
               [('sum by (device) (changes(push_time_seconds{job="tiny-profiler"}[1h]))', "{{device}}"),
                (f"sum by (status) (profiling_sessions_total{{{s}}})", "{{status}}")], "none", 0, 16),
        _panel(6, "Session duration p90 (s)",
               [("histogram_quantile(0.9, sum by (le, device_id) "
                 f"(rate(profiling_duration_seconds_bucket{{{s}}}[1h])))", "{{device_id}}")], "s", 12, 16),
        _panel(7, "Model RAM (KiB)", [(f"model_memory_usage_kb{{{s}}}", "{{device_id}} {{model_name}}")], "kbytes",
               0, 24),
        _panel(8, "Quantization error rate", [(f"quantization_error_rate{{{s}}}", "{{device_id}} {{model_name}}")],
               "percentunit", 12, 24),
        _panel(9, "Last session valid", [(f"profiling_session_valid{{{s}}}", "{{device_id}} {{model_name}}")],
               "bool", 0, 32, kind="stat", w=24, h=4),
    ])


def device_health() -> dict[str, Any]:
    """Connection, memory, power and temperature of each board."""
    s = SELECTOR
    return _dashboard("tiny-profiler-device-health", "Device Health", [
        _panel(1, "Connected", [(f"device_connection_status{{{s}}}", "{{device_id}}")], "bool", 0, 0, kind="stat",
               w=8, h=4),
        _panel(2, "Errors in the last session", [(f"sum by (device_id, kind) (profiling_errors_total{{{s}}})",
                                                  "{{device_id}} {{kind}}")], "none", 8, 0, kind="stat", w=8, h=4),
        _panel(3, "Since last valid session", [(f"time() - profiling_last_success_timestamp_seconds{{{s}}}",
                                                "{{device_id}}")], "s", 16, 0, kind="stat", w=8, h=4),
        _panel(4, "RAM use (% of board)",
               [(f'device_memory_usage_bytes{{{s}, kind="peak"}} / ignoring(kind) '
                 f'device_memory_usage_bytes{{{s}, kind="total"}}', "{{device_id}}")], "percentunit", 0, 4),
        _panel(5, "RAM by kind (bytes)", [(f'device_memory_usage_bytes{{{s}, kind!="total"}}',
                                           "{{device_id}} {{kind}}")], "bytes", 12, 4),
        _panel(6, "Power (mW)", [(f"device_power_consumption_mw{{{s}}}", "{{device_id}}")], "mwatt", 0, 12),
        _panel(7, "Temperature (°C)", [(f"device_temperature_celsius{{{s}}}", "{{device_id}}")], "celsius", 12, 12),
    ])


DASHBOARDS = {"main-profiling.json": main_profiling, "device-health.json": device_health}


def render(name: str) -> str:
    """The file text of one dashboard."""
    return json.dumps(DASHBOARDS[name](), indent=2) + "\n"


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (OUT / name).write_text(render(name))
        sys.stdout.write(f"wrote monitoring/grafana/dashboards/{name}\n")
