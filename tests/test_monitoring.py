"""Monitoring assets: promtool validates config and rules and runs the alert unit tests;
every PromQL expression in dashboards and alerts names only metrics the profiler exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from profiler.sinks.prometheus import exported_metric_names

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
sys.path.insert(0, str(ROOT / "scripts"))
from make_dashboards import DASHBOARDS, render  # noqa: E402

# The pushgateway's own series about our pushes; the one metric we use that we do not export.
PUSHGATEWAY_SERIES = {"push_time_seconds"}
_GROUPING = re.compile(r"\b(by|without|ignoring|on|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    stripped = _RANGES.sub("", _MATCHERS.sub("", _GROUPING.sub("", expr)))
    names = set()
    for match in _IDENT.finditer(stripped):
        rest = stripped[match.end():].lstrip()
        if rest.startswith("(") or match.group() in {"and", "or", "unless", "bool", "offset"}:
            continue
        names.add(match.group())
    return names


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package (make test installs it)"
    return subprocess.run([promtool, *args], capture_output=True, text=True, check=False, cwd=MONITORING)


def test_promtool_accepts_config_and_rules_and_alert_tests_pass() -> None:
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml"),
                 ("test", "rules", "alerts_test.yml")):
        result = _promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr
    amtool = shutil.which("amtool")
    assert amtool, "amtool comes with Debian's prometheus-alertmanager package (make test installs it)"
    checked = subprocess.run([amtool, "check-config", "alertmanager.yml"], capture_output=True, text=True,
                             check=False, cwd=MONITORING)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())["tests"]
    alerts = {r["alert"] for g in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    assert alerts == {"DeviceDisconnected", "DeviceOverheating", "ProfilingSessionFailed", "LowThroughput",
                      "HighMemoryUsage"}
    for alert in alerts:  # each alert is tested firing and quiet
        cases = [c for t in tested for c in t["alert_rule_test"] if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in cases) and any(not c["exp_alerts"] for c in cases), alert


def test_dashboards_are_generated_and_name_only_exported_metrics() -> None:
    exported = exported_metric_names() | PUSHGATEWAY_SERIES
    titles = set()
    for name in DASHBOARDS:
        path = MONITORING / "grafana" / "dashboards" / name
        assert path.read_text() == render(name), f"run `make monitor-dashboards` ({name} is stale)"
        dashboard = json.loads(path.read_text())
        titles.add(dashboard["title"])
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        # label_values(SERIES, LABEL): the series is PromQL, the label is not.
        exprs += [re.fullmatch(r"label_values\((.*),\s*\w+\)", v["query"]).group(1)  # type: ignore[union-attr]
                  for v in dashboard["templating"]["list"]]
        assert exprs
        for expr in exprs:
            unknown = metric_names(expr) - exported
            assert not unknown, f"{name}: {expr!r} names {unknown}"
    assert titles == {"Main Profiling", "Device Health"}
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]
    for rule in rules:
        assert metric_names(rule["expr"]) <= exported, rule["alert"]


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (le, device_id) (rate(profiling_duration_seconds_bucket{a="b"}[1h]))',
     {"profiling_duration_seconds_bucket"}),
    ('x{kind="peak"} / ignoring(kind) y{kind="total"} > 0.9', {"x", "y"}),
])
def test_metric_name_extraction(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
