# tiny-profiler: every target sets itself up on a fresh Debian/Ubuntu machine.
# A second run skips what is already in place (apt packages present, venv up to date).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := make gcc qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi prometheus prometheus-pushgateway prometheus-alertmanager qemu-system-misc gcc-riscv64-unknown-elf ser2net clang libclang-rt-14-dev chromium
DEMO_ARGS ?= --device stm32 --emulate --model demo --tokens 32 --repeat 5 --warmup 1 --predict

COMPOSE := docker compose -f monitoring/docker-compose.monitoring.yml

.PHONY: setup apt venv lab-venv firmware demo plan test lint bench clean monitor-start monitor-stop monitor-dashboards

setup: apt venv

apt:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	python3 -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# labgrid (coordinator, exporter, client) for tests/test_labgrid.py, in its own venv: labgrid brings
# pyserial-labgrid, a fork that installs over pyserial's files. Users get it with the [lab] extra.
LAB_VENV ?= .venv-lab
lab-venv: $(LAB_VENV)/.installed

$(LAB_VENV)/.installed:
	@[ -x $(LAB_VENV)/bin/python ] || python3 -m venv $(LAB_VENV)
	$(LAB_VENV)/bin/python -m pip install -q 'labgrid>=24'
	@touch $@

firmware: apt
	$(MAKE) -C firmware PORT=stm32f4

demo: setup
	$(VENV)/bin/tiny-profiler run $(DEMO_ARGS)

# A bench plan, as the CI benchmark job runs it: make plan PLAN=examples/plan-lab.toml PLAN_ARGS="--only c3-left"
PLAN ?= examples/plan-emulated.toml
PLAN_OUT ?= results/bench-$(shell date -u +%Y%m%dT%H%M%SZ)
PLAN_ARGS ?=
plan: setup
	$(VENV)/bin/tiny-profiler bench $(PLAN) --out $(PLAN_OUT) $(PLAN_ARGS)

lint: venv
	$(VENV)/bin/ruff check profiler platforms tests scripts benchmarks
	$(VENV)/bin/mypy profiler platforms
	$(VENV)/bin/lint-imports
	$(VENV)/bin/actionlint .github/workflows/hil-benchmark.yml

test: setup lint lab-venv
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/emulated.py
	$(PY) benchmarks/kernels.py
	$(PY) benchmarks/helium.py
	$(PY) benchmarks/stories15m.py
	$(PY) benchmarks/power_ingest.py
	$(PY) benchmarks/cycle_anchors.py
	$(PY) benchmarks/cycle_anchors.py --survey

# The monitoring stack: docker compose (with Grafana) when it works, else Debian's prometheus, pushgateway and
# alertmanager as your own processes, state, logs and pid files under $(MONITOR_DIR) (scripts/monitor_native.py).
MONITOR_DIR ?= .monitoring
COMPOSE_WORKS = docker compose version >/dev/null 2>&1 && docker info >/dev/null 2>&1
monitor-start: venv
	@if $(COMPOSE_WORKS); then \
	  echo "monitoring: docker compose (Prometheus, pushgateway, alertmanager, Grafana)"; \
	  $(COMPOSE) up -d && \
	  echo "Grafana http://localhost:3000  Prometheus http://localhost:9090  pushgateway http://localhost:9091  alertmanager http://localhost:9093"; \
	else \
	  echo "monitoring: no working docker compose; Debian's prometheus, pushgateway and alertmanager as your" \
	       "own processes (state and logs in $(MONITOR_DIR)/; Grafana needs the compose stack)"; \
	  $(PY) scripts/monitor_native.py start --dir $(MONITOR_DIR); \
	fi

monitor-stop: venv
	@if ls $(MONITOR_DIR)/*.pid >/dev/null 2>&1; then \
	  $(PY) scripts/monitor_native.py stop --dir $(MONITOR_DIR); \
	elif $(COMPOSE_WORKS); then \
	  $(COMPOSE) down; \
	else \
	  echo "monitoring: nothing running (no pid files in $(MONITOR_DIR)/, no working docker compose)"; \
	fi

monitor-dashboards: venv
	$(PY) scripts/make_dashboards.py
	@echo "Grafana (compose stack) loads them from monitoring/grafana/dashboards:" \
	      "http://localhost:3000/d/tiny-profiler-main and /d/tiny-profiler-device-health"
	@if ls $(MONITOR_DIR)/*.pid >/dev/null 2>&1; then \
	  echo "native stack (no Grafana; Prometheus graphs and alerts, alertmanager):"; \
	  $(PY) scripts/monitor_native.py urls --dir $(MONITOR_DIR); \
	fi

clean:
	rm -rf firmware/build .pytest_cache
