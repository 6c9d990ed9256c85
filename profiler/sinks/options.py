"""Where a session's records go besides its JSONL: the registered sink kinds, built from their options.

One place builds the sinks from the options' values, so `run` and `bench` (its worker processes) share them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from profiler.logs import logger
from profiler.sinks import Sink, SinkContext, sink_kinds


class ObservabilityOptions:
    """The values of every sink kind's options by name (each kind's default where not given), checked."""

    def __init__(self, strict_export: bool = False, **values: Any) -> None:
        options = {option.name: option for kind in sink_kinds() for option in kind.options}
        unknown = sorted(set(values) - set(options))
        if unknown:
            raise TypeError(f"no sink has the option(s) {', '.join(unknown)}")
        self.strict_export = strict_export
        self.values = {name: values.get(name, option.default) for name, option in options.items()}
        for name, option in options.items():
            if option.check is not None and self.values[name] is not None:
                option.check(self.values[name])

    @classmethod
    def from_cli(cls, pushgateway: str | None, **kwargs: Any) -> ObservabilityOptions:
        """Options with the environment's defaults filled in (TINY_PROFILER_PUSHGATEWAY)."""
        return cls(pushgateway=pushgateway or os.environ.get("TINY_PROFILER_PUSHGATEWAY") or None, **kwargs)


def make_sinks(options: ObservabilityOptions, jsonl_path: Path, warn: Callable[[str], None]) -> list[Sink]:
    """The sinks the options turn on, in registry order."""

    def warn_and_log(message: str) -> None:
        logger().warning(message)
        warn(message)

    context = SinkContext(jsonl_path, options.strict_export, warn_and_log)
    built = (kind.build(options.values, context) for kind in sink_kinds())
    return [sink for sink in built if sink is not None]
