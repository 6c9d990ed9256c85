"""One exception hierarchy for everything a user can be told.

Each class is named by where the fault is, carries a distinct exit code, and
its message is one line that ends with what to do next.
"""

from __future__ import annotations


class ProfilerError(Exception):
    """Base of all errors shown to the user as one line."""

    exit_code = 10


class ConfigError(ProfilerError):
    """The command line or a configuration file asks for something impossible."""

    exit_code = 3


class ModelError(ProfilerError):
    """A model file is missing, corrupt or in a format we do not read."""

    exit_code = 4


class FitError(ProfilerError):
    """The model does not fit the board's flash or RAM."""

    exit_code = 5


class ToolMissing(ProfilerError):
    """An external program (QEMU, a compiler, a flasher) is not installed."""

    exit_code = 6


class PlatformError(ProfilerError):
    """The board could not be prepared: build, flash, reset or emulator start failed."""

    exit_code = 7


class FlashError(PlatformError):
    """Writing firmware or model to the board failed."""


class LinkError(ProfilerError):
    """The serial link to the board failed."""

    exit_code = 8


class LinkTimeout(LinkError):
    """The board stopped answering within the allowed time."""


class LinkDisconnected(LinkError):
    """The port closed under us: cable pulled, board reset, emulator died."""


class ProtocolError(LinkError):
    """The board speaks another protocol version or sent something we cannot use."""


class FirmwareError(ProfilerError):
    """The board reported an error code."""

    exit_code = 9

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class ExportError(ProfilerError):
    """A results exporter (pushgateway, OTLP) failed and --strict-export asked to fail on it."""

    exit_code = 11


class BoardBusy(ProfilerError):
    """Another profiler (or a labgrid user) holds the board; the message names the holder."""

    exit_code = 12


class ResultsError(ProfilerError):
    """A result file (JSONL, plot, report, log) cannot be written: read-only, no space, not a directory."""

    exit_code = 13


class InternalError(ProfilerError):
    """A bug in the profiler; the message names the exception, --traceback shows it."""

    exit_code = 70


class Interrupted(ProfilerError):
    """Ctrl-C, SIGTERM or SIGHUP: the session stopped early and its file says so."""

    exit_code = 130


class Stopped(KeyboardInterrupt):
    """Raised by the SIGTERM/SIGHUP handler, so every session closes its file as for Ctrl-C."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def interruption(exc: KeyboardInterrupt, partial: bool = True) -> Interrupted:
    """The user-facing error for Ctrl-C or a stop signal."""
    what = f"stopped by {exc.signal_name}" if isinstance(exc, Stopped) else "interrupted by the user (Ctrl-C)"
    return Interrupted(what + ("; partial results are in the file" if partial else ""))
