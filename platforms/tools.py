"""Running external flashers: argument lists, install hints, one-line failures.

Every command is an argument list (never a shell string). A missing program
raises ToolMissing naming where it comes from (a pip extra or a Debian
package); a failing one raises FlashError with its last meaningful line and
what to try next.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from platforms.flasher import ToolStatus
from profiler.errors import FlashError, ToolMissing

TOOL_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Tool:
    """An external program and how to install it."""

    program: str
    install: str  # the hint: a pip command or a Debian package

    def status(self, what: str) -> ToolStatus:
        """Where the program is, or that it is missing with the install hint."""
        found = shutil.which(self.program)
        return ToolStatus(what, True, found) if found else ToolStatus(what, False, "not on PATH", self.install)

    def require(self) -> str:
        """The program's path, or ToolMissing with the one-line install hint."""
        found = shutil.which(self.program)
        if found is None:
            raise ToolMissing(f"{self.program} is not installed; {self.install}")
        return found


PYOCD = Tool("pyocd", "pip install 'tiny-llm-edge-profiler[lab]' (or pip install pyocd)")
OPENOCD = Tool("openocd", "install the Debian package openocd (sudo apt-get install openocd)")
ST_FLASH = Tool("st-flash", "install the Debian package stlink-tools (sudo apt-get install stlink-tools)")


def run_tool(tool: Tool, args: Sequence[str], what: str, next_step: str,
             timeout_s: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run `tool` with `args`; a non-zero exit becomes a FlashError saying `what` failed and `next_step`."""
    argv = [tool.require(), *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise FlashError(f"{what}: {tool.program} did not finish in {timeout_s:.0f} s; {next_step}") from exc
    if result.returncode != 0:
        raise FlashError(f"{what}: {last_line(result.stderr + result.stdout)}; {next_step}")
    return result


def last_line(output: str) -> str:
    """The last line of a tool's output that says something (errors come last)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]
