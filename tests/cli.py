"""The real command line as the tests start it: a fresh interpreter running the console script's module."""

from __future__ import annotations

import sys

CLI = [sys.executable, "-m", "profiler.cli"]
