"""The monitoring stack without Docker: Debian's prometheus, prometheus-pushgateway and
prometheus-alertmanager as the user's own processes (`make monitor-start` when `docker compose` does not work).

Everything lives under one state directory (default `.monitoring/`, git-ignored): Prometheus's
config generated from monitoring/prometheus.yml (the compose stack's service names, alertmanager's
included, replaced by loopback addresses; the alert rules by their path), the TSDB and
alertmanager's data, one log and one pid file per program. Alertmanager reads
monitoring/alertmanager.yml as it is. `stop` ends exactly the processes whose pid files are there, after
checking each pid still runs that program with that state directory.

    python scripts/monitor_native.py start [--dir .monitoring] [--prometheus-port 9090] ...
    python scripts/monitor_native.py stop|urls [--dir .monitoring]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the three programs (and the profiler's live /metrics Prometheus scrapes)."""

    prometheus: int = 9090
    pushgateway: int = 9091
    alertmanager: int = 9093
    profiler_metrics: int = 8000


@dataclass(frozen=True)
class Program:
    """One program of the stack: its names on PATH (Debian's first) and the Debian package with it."""

    name: str
    binaries: tuple[str, ...]
    package: str

    def path(self) -> str:
        for binary in self.binaries:
            found = shutil.which(binary)
            if found:
                return found
        raise SystemExit(f"error: {self.binaries[0]} is not installed; sudo apt-get install {self.package} "
                         "(or run make setup)")


PUSHGATEWAY = Program("pushgateway", ("prometheus-pushgateway", "pushgateway"), "prometheus-pushgateway")
ALERTMANAGER = Program("alertmanager", ("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager")
PROMETHEUS = Program("prometheus", ("prometheus",), "prometheus")
PROGRAMS = (PUSHGATEWAY, ALERTMANAGER, PROMETHEUS)  # start order: Prometheus last, its targets are up


def prometheus_config(ports: Ports, scrape_interval: str | None = None, evaluation_interval: str | None = None,
                      source: Path = MONITORING / "prometheus.yml") -> dict[str, object]:
    """The project's prometheus.yml with loopback targets, the rules by absolute path and alertmanager wired."""
    config = yaml.safe_load(source.read_text())
    loopback = {"pushgateway:9091": f"127.0.0.1:{ports.pushgateway}",
                "host.docker.internal:8000": f"127.0.0.1:{ports.profiler_metrics}",
                "alertmanager:9093": f"127.0.0.1:{ports.alertmanager}"}
    statics = [s for job in config["scrape_configs"] for s in job.get("static_configs", [])]
    statics += [s for am in config.get("alerting", {}).get("alertmanagers", []) for s in am.get("static_configs", [])]
    for static in statics:
        static["targets"] = [loopback.get(target, target) for target in static["targets"]]
    config["rule_files"] = [str((source.parent / rules).resolve()) for rules in config.get("rule_files", [])]
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
    if evaluation_interval:
        config["global"]["evaluation_interval"] = evaluation_interval
    return config


def _command(program: Program, state: Path, ports: Ports) -> list[str]:
    binary = program.path()
    if program is PUSHGATEWAY:
        return [binary, f"--web.listen-address=127.0.0.1:{ports.pushgateway}",
                f"--persistence.file={state / 'pushgateway.state'}", "--persistence.interval=1m"]
    if program is ALERTMANAGER:
        return [binary, f"--config.file={MONITORING / 'alertmanager.yml'}", f"--storage.path={state / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{ports.alertmanager}",
                "--cluster.listen-address="]  # one instance: no gossip port to clash with
    return [binary, f"--config.file={state / 'prometheus.yml'}", f"--storage.tsdb.path={state / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{ports.prometheus}", "--storage.tsdb.retention.time=30d"]


def _url(program: Program, ports: Ports) -> str:
    port = {PUSHGATEWAY: ports.pushgateway, ALERTMANAGER: ports.alertmanager, PROMETHEUS: ports.prometheus}[program]
    return f"http://127.0.0.1:{port}"


def _pid_file(state: Path, program: Program) -> Path:
    return state / f"{program.name}.pid"


def _running(pid: int, program: Program, state: Path) -> bool:
    """True when `pid` is alive and is `program` started with this state directory (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    text = b" ".join(argv).decode(errors="replace")
    return any(Path(argv[0].decode(errors="replace")).name == b for b in program.binaries) and str(state) in text


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(state: Path, ports: Ports, scrape_interval: str | None = None,
          evaluation_interval: str | None = None) -> dict[str, str]:
    """Start the three programs (those not already running) and wait until each answers /-/ready."""
    state = state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    (state / "prometheus.yml").write_text(yaml.safe_dump(
        prometheus_config(ports, scrape_interval, evaluation_interval), sort_keys=False))
    (state / "ports").write_text(f"{ports.prometheus} {ports.pushgateway} {ports.alertmanager}\n")
    for program in PROGRAMS:
        pid_file = _pid_file(state, program)
        if pid_file.exists() and _running(int(pid_file.read_text()), program, state):
            continue
        with open(state / f"{program.name}.log", "ab") as log:
            process = subprocess.Popen(_command(program, state, ports), stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=state, start_new_session=True)
        pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + READY_TIMEOUT_S
    for program in PROGRAMS:
        while not _ready(_url(program, ports)):
            pid = int(_pid_file(state, program).read_text())
            if not _running(pid, program, state) or time.monotonic() > deadline:
                lines = (state / f"{program.name}.log").read_text(errors="replace").strip().splitlines()
                stop(state)
                raise SystemExit(f"error: {program.name} did not start: {lines[-1] if lines else 'no output'} "
                                 f"(log: {state / (program.name + '.log')})")
            time.sleep(0.1)
    return {program.name: _url(program, ports) for program in PROGRAMS}


def stop(state: Path) -> list[str]:
    """SIGTERM (then SIGKILL after 10 s) exactly the programs whose pid files are in `state`."""
    state = state.resolve()
    stopped = []
    for program in PROGRAMS:
        pid_file = _pid_file(state, program)
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if _running(pid, program, state):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _running(pid, program, state) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _running(pid, program, state):
                os.kill(pid, signal.SIGKILL)
            stopped.append(f"{program.name} (pid {pid})")
        pid_file.unlink()
    return stopped


def saved_ports(state: Path) -> Ports:
    """The ports `start` used for this state directory (defaults when it never ran)."""
    try:
        prometheus, pushgateway, alertmanager = (int(p) for p in (state / "ports").read_text().split())
    except (OSError, ValueError):
        return Ports()
    return Ports(prometheus, pushgateway, alertmanager)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop", "urls"))
    parser.add_argument("--dir", type=Path, default=Path(".monitoring"), help="state, logs and pid files")
    parser.add_argument("--prometheus-port", type=int, default=Ports.prometheus)
    parser.add_argument("--pushgateway-port", type=int, default=Ports.pushgateway)
    parser.add_argument("--alertmanager-port", type=int, default=Ports.alertmanager)
    parser.add_argument("--scrape-interval", help="override the config's (e.g. 1s for tests)")
    parser.add_argument("--evaluation-interval", help="override the config's (e.g. 1s for tests)")
    args = parser.parse_args(argv)
    if args.action == "stop":
        stopped = stop(args.dir)
        print(f"stopped {', '.join(stopped)}" if stopped else f"nothing running from {args.dir}")
        return 0
    if args.action == "start":
        urls = start(args.dir, Ports(args.prometheus_port, args.pushgateway_port, args.alertmanager_port),
                     args.scrape_interval, args.evaluation_interval)
    else:
        ports = saved_ports(args.dir)
        urls = {p.name: _url(p, ports) for p in PROGRAMS}
    for name, url in urls.items():
        print(f"{name:13} {url}")
    print(f"push with: tiny-profiler run ... --pushgateway {urls['pushgateway']}  (state and logs: {args.dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
