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


class InternalError(ProfilerError):
    """A bug in the profiler; the message names the exception, --traceback shows it."""

    exit_code = 70


class Interrupted(ProfilerError):
    """The user pressed Ctrl-C."""

    exit_code = 130
