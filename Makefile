# tiny-profiler: every target sets itself up on a fresh Debian/Ubuntu machine.
# A second run skips what is already in place (apt packages present, venv up to date).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := make gcc qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi
DEMO_ARGS ?= --device stm32 --emulate --model demo --tokens 32 --repeat 5 --warmup 1

.PHONY: setup apt venv firmware demo test lint bench clean

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

firmware: apt
	$(MAKE) -C firmware PORT=stm32f4

demo: setup
	$(VENV)/bin/tiny-profiler run $(DEMO_ARGS)

lint: venv
	$(VENV)/bin/ruff check profiler platforms tests scripts benchmarks
	$(VENV)/bin/mypy profiler platforms

test: setup lint
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/emulated.py

clean:
	rm -rf firmware/build .pytest_cache
