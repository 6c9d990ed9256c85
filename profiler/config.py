"""`tiny-profiler.toml`: defaults for command options, one table per command.

```toml
[run]                     # any `tiny-profiler run` option, named as on the command line without `--`
device = "stm32"
tokens = 64
kernels = "portable"

[bench]
jobs = 2
threshold = "3%"

[export]                  # options run and bench share: where results go besides the JSONL
pushgateway = "http://lab-host:9091"
otlp_endpoint = "http://lab-host:4318"
log_level = "debug"
```

The file is `--config FILE` (before the command), else $TINY_PROFILER_CONFIG,
else `./tiny-profiler.toml` when present. Precedence, highest first: a
command-line option, the environment variable of that setting (table in
docs/configuration.md), the file, the built-in default. The file becomes
click's `default_map`, so an option given on the command line always wins;
a key whose environment variable is set is left out, so the environment wins
over the file. Relative paths in the file are relative to the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer.core

from profiler.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE_NAME = "tiny-profiler.toml"
CONFIG_ENV = "TINY_PROFILER_CONFIG"
SHARED_SECTION = "export"  # applied to every command that has the option
# Settings that an environment variable also sets: when the variable is set, the file's value is ignored.
ENV_FOR_KEY: dict[str, tuple[str, ...]] = {
    "pushgateway": ("TINY_PROFILER_PUSHGATEWAY",),
    "otlp_endpoint": ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    "hardware_map": ("TINY_PROFILER_HARDWARE_MAP",),
}


def find_config(explicit: Path | None) -> Path | None:
    """The config file in use: --config, $TINY_PROFILER_CONFIG, or ./tiny-profiler.toml if it exists."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    local = Path(FILE_NAME)
    return local if local.is_file() else None


def option_keys(command: Any) -> dict[str, typer.core.TyperOption]:
    """File keys of a command's options: the long flag without `--`, dashes as underscores."""
    keys: dict[str, typer.core.TyperOption] = {}
    for param in command.params:
        if isinstance(param, typer.core.TyperOption):
            for flag in param.opts:
                if flag.startswith("--"):
                    keys[flag[2:].replace("-", "_")] = param
    return keys


def _env_set(key: str) -> bool:
    return any(os.environ.get(variable) for variable in ENV_FOR_KEY.get(key, ()))


def _value(path: Path, section: str, key: str, option: typer.core.TyperOption, value: Any) -> Any:
    """The value checked against the option's type; a relative path made relative to the file."""
    kind = option.type_descriptor.annotation
    if kind is Path and isinstance(value, str):
        return str(path.parent / Path(value).expanduser())
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise ConfigError(f"config file {path}: [{section}] {key} must be {kind.__name__}, not {value!r}")
    return value


def load_defaults(path: Path, commands: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The file as click's default_map ({command: {parameter name: value}}); every mistake one ConfigError."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; pass an existing file to --config "
                          f"(or unset {CONFIG_ENV})") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix it or pass another --config") from None
    known = sorted([*commands, SHARED_SECTION])
    defaults: dict[str, dict[str, Any]] = {}
    # [export] first, so a command's own table overrides what it shares.
    for section in sorted(data, key=lambda name: name != SHARED_SECTION):
        table = data[section]
        if section not in known or not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [{section}] is not one of the tables {', '.join(known)}")
        targets = list(commands) if section == SHARED_SECTION else [section]
        keys = {name: option_keys(commands[name]) for name in targets}
        unknown = [key for key in table if not any(key in keys[name] for name in targets)]
        if unknown:
            hint = sorted({k for name in targets for k in keys[name]})
            raise ConfigError(f"config file {path}: [{section}] has unknown key(s) {', '.join(unknown)}; "
                              f"known: {', '.join(hint)}")
        for name in targets:
            for key, value in table.items():
                if key in keys[name] and not _env_set(key):  # the environment overrides the file
                    option = keys[name][key]
                    defaults.setdefault(name, {})[option.name or key] = _value(path, section, key, option, value)
    return defaults
