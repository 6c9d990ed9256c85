"""Bench plans: a TOML file listing boards and a matrix of models, quantizations, prompts and lengths.

```toml
hardware_map = "hardware-map.toml"   # optional: for boards named by `board` (relative to this file)
coordinator = "lab-host:20408"       # optional: labgrid coordinator for `place` boards (else LG_COORDINATOR)

[defaults]                           # every session, unless a board says otherwise
prompt = "Once upon a time"
tokens = 32
repeat = 5
warmup = 1

[matrix]                             # every board runs every combination, one session each
models = ["demo"]                    # bundled names, .tpm files, or llama2.c checkpoints (.bin, converted)
quantizations = ["int8"]             # optional: checkpoints are converted to each; a .tpm must be one of them

[[boards]]
name = "stm32-emu"                   # the row in the live view and the summary (default: device/board/place)
device = "stm32"
emulate = true
```

A board is one of: an emulated board (`device` + `emulate = true`), a real
board (`device` + `port`), a bench board from the hardware map (`board`), or
a labgrid place (`place`, with `device` unless the place has a device tag).
Any `[defaults]` key, and `models`, `quantizations`, `prompts`, `tokens`,
may be set per board. The run settings `tokens`, `seed`, `temperature`,
`kernels` (the matmul kernel set, e.g. "dsp" or "portable"), `power` (a meter
spec or "model") and `check_quality` are axes too: a list of them in
`[matrix]` or on a board runs one session per value (`[defaults]` holds one
value). Every mistake is one ConfigError naming the file and the key.
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platforms import adapter_for
from platforms.boards import resolve_board
from profiler.api import DEFAULT_PROMPT, resolve_model_path
from profiler.errors import ConfigError, ModelError
from profiler.models.format import read_header

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Run settings that may also be lists (a matrix axis each), with the value a session takes when none is given.
AXES: dict[str, tuple[type, Any]] = {"tokens": (int, 32), "kernels": (str, None), "power": (str, None),
                                     "check_quality": (bool, False), "temperature": (float, 0.0), "seed": (int, 0)}
RUN_KEYS = {"prompt": str, "repeat": int, "warmup": int, "flash": bool} | {k: t for k, (t, _) in AXES.items()}
MATRIX_KEYS = {"models", "quantizations", "prompts"} | set(AXES)
BOARD_KEYS = {"name", "device", "emulate", "port", "board", "place", "flasher"} | set(RUN_KEYS) | MATRIX_KEYS
TOP_KEYS = {"hardware_map", "coordinator", "defaults", "matrix", "boards"}
QUANTIZATIONS = ("int8", "int4")


@dataclass(frozen=True)
class ModelSpec:
    """A model of the matrix: a .tpm file, or a checkpoint to convert to `quantization`."""

    label: str  # the name sessions and the summary show
    path: Path
    quantization: str
    checkpoint: bool = False
    tokenizer: Path | None = None
    group_size: int = 32
    seq_len: int | None = None

    def converted_name(self) -> str:
        """File name of the converted model inside the run directory."""
        return f"{self.path.stem}-{self.quantization}.tpm"


@dataclass(frozen=True)
class PlanBoard:
    """One board of the plan: one worker, its sessions one after another."""

    name: str
    device: str | None
    emulate: bool | None = None
    port: str | None = None
    board: str | None = None  # hardware-map entry
    place: str | None = None  # labgrid place
    flasher: str | None = None

    @property
    def emulated(self) -> bool:
        """Whether this board runs in QEMU (and so counts against --jobs)."""
        if self.emulate is not None:
            return self.emulate
        if self.port or self.board or self.place or self.device is None:
            return False
        board = resolve_board(self.device)
        return adapter_for(board).can_emulate(board)  # as `run` decides it (the ESP32 fork, when installed)


@dataclass(frozen=True)
class SessionSpec:
    """One cell of the matrix on one board."""

    board: PlanBoard
    model: ModelSpec
    prompt: str
    tokens: int
    repeat: int
    warmup: int
    seed: int
    temperature: float
    flash: bool
    kernels: str | None = None  # None: the firmware port's own
    power: str | None = None  # None: the model on emulated boards, nothing on real ones
    check_quality: bool = False

    @property
    def label(self) -> str:
        """`demo int8, 32 tokens` (with each setting that is not the default)."""
        extra = "" if self.prompt == DEFAULT_PROMPT else f", prompt {self.prompt[:20]!r}"
        extra += f", kernels {self.kernels}" if self.kernels else ""
        extra += f", power {self.power}" if self.power else ""
        extra += ", quality check" if self.check_quality else ""
        extra += f", temperature {self.temperature:g}" if self.temperature else ""
        extra += f", seed {self.seed}" if self.seed else ""
        return f"{self.model.label} {self.model.quantization}, {self.tokens} tokens{extra}"


@dataclass
class Plan:
    """A parsed plan: boards and the sessions each runs, in order."""

    path: Path
    boards: list[PlanBoard]
    sessions: dict[str, list[SessionSpec]] = field(default_factory=dict)  # board name -> sessions
    hardware_map: Path | None = None
    coordinator: str | None = None

    @property
    def total(self) -> int:
        """Number of sessions."""
        return sum(len(s) for s in self.sessions.values())


def _where(path: Path, what: str) -> str:
    return f"plan {path}, {what}"


def _typed(path: Path, where: str, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{_where(path, where)}: {key} must be {kind.__name__}, not {value!r}")
    return value


def _list(path: Path, where: str, key: str, value: Any, kind: type) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"{_where(path, where)}: {key} is empty; give at least one")
    return [_typed(path, where, key, v, kind) for v in values]


def _models(path: Path, where: str, entries: list[Any], quantizations: list[str] | None) -> list[ModelSpec]:
    specs: list[ModelSpec] = []
    for entry in entries:
        table = {"path": entry} if isinstance(entry, str) else entry
        if not isinstance(table, dict) or not isinstance(table.get("path"), str):
            raise ConfigError(f"{_where(path, where)}: a model is a name, a path, or {{ path = ..., tokenizer = ... }}")
        unknown = set(table) - {"path", "tokenizer", "group_size", "seq_len"}
        if unknown:
            raise ConfigError(f"{_where(path, where)}: unknown model key(s) {', '.join(sorted(unknown))}")
        raw = str(table["path"])
        local = (path.parent / raw).expanduser()
        spec_path = local if ("/" in raw or raw.endswith((".tpm", ".bin"))) and local.exists() else Path(raw)
        if spec_path.suffix == ".bin":
            if not spec_path.is_file():
                raise ModelError(f"{_where(path, where)}: checkpoint {raw} not found")
            tokenizer = table.get("tokenizer")
            for quant in quantizations or ["int8"]:
                specs.append(ModelSpec(spec_path.stem, spec_path, quant, checkpoint=True,
                                       tokenizer=(path.parent / tokenizer) if tokenizer else None,
                                       group_size=int(table.get("group_size", 32)),
                                       seq_len=table.get("seq_len")))
            continue
        try:
            resolved = resolve_model_path(str(spec_path))
        except ModelError as exc:
            raise ModelError(f"{_where(path, where)}: {exc}") from None
        quant = read_header(resolved).quant
        if quantizations is not None and quant not in quantizations:
            raise ConfigError(f"{_where(path, where)}: {raw} is {quant}, not one of quantizations "
                              f"{', '.join(quantizations)}; add {quant} or give a checkpoint to convert")
        specs.append(ModelSpec(resolved.stem, resolved, quant))
    return specs


def _board(path: Path, index: int, entry: Any) -> tuple[PlanBoard, dict[str, Any]]:
    where = f"[[boards]] #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{_where(path, where)}: expected a table with device = ... (or board, place)")
    unknown = set(entry) - BOARD_KEYS
    if unknown:
        raise ConfigError(f"{_where(path, where)}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(BOARD_KEYS))}")
    text = {k: _typed(path, where, k, entry[k], str) for k in ("name", "device", "port", "board", "place", "flasher")
            if k in entry}
    emulate = _typed(path, where, "emulate", entry["emulate"], bool) if "emulate" in entry else None
    name = text.get("name") or text.get("board") or text.get("place") or text.get("device")
    if name is None:
        raise ConfigError(f"{_where(path, where)}: give device (with emulate = true or port), board or place")
    where = f"board {name}"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"{_where(path, where)}: name may hold letters, digits, '.', '_' and '-' only")
    given = [k for k in ("port", "board", "place") if k in text] + (["emulate"] if emulate else [])
    if len(given) > 1:
        raise ConfigError(f"{_where(path, where)}: {' and '.join(given)} exclude each other; keep one")
    if "device" in text:
        try:
            resolve_board(text["device"])
        except ConfigError as exc:
            raise ConfigError(f"{_where(path, where)}: {exc}") from None
    elif "board" not in text and "place" not in text:
        raise ConfigError(f"{_where(path, where)}: device is missing")
    board = PlanBoard(name=name, device=text.get("device"), emulate=emulate, port=text.get("port"),
                      board=text.get("board"), place=text.get("place"), flasher=text.get("flasher"))
    return board, {k: v for k, v in entry.items() if k in RUN_KEYS or k in MATRIX_KEYS}


def load_plan(path: Path, only: list[str] | None = None, hardware_map: Path | None = None) -> Plan:
    """Read, check and expand a plan; `only` keeps the boards so named (or of those devices).

    `hardware_map` replaces the plan's own: a lab runner keeps its map outside the repository.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"plan {path} not found; see examples/plan-emulated.toml") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"plan {path} is not valid TOML ({exc}); see examples/plan-emulated.toml") from None
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConfigError(f"plan {path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(TOP_KEYS))}")
    defaults = data.get("defaults") or {}
    matrix = data.get("matrix") or {}
    for table, known, name in ((defaults, set(RUN_KEYS), "[defaults]"), (matrix, MATRIX_KEYS, "[matrix]")):
        if not isinstance(table, dict) or set(table) - known:
            extra = sorted(set(table) - known) if isinstance(table, dict) else ["(not a table)"]
            raise ConfigError(f"plan {path}, {name}: unknown key(s) {', '.join(extra)}; "
                              f"known: {', '.join(sorted(known))}")
    base = {k: _typed(path, "[defaults]", k, v, RUN_KEYS[k]) for k, v in defaults.items()}
    entries = data.get("boards")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"plan {path}: no [[boards]]; list at least one board")
    boards_and_overrides = [_board(path, i, e) for i, e in enumerate(entries)]
    names = [b.name for b, _ in boards_and_overrides]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"plan {path}: board name(s) {', '.join(duplicates)} used twice; give each a distinct name")
    if only:
        wanted = {o.strip() for o in only if o.strip()}
        boards_and_overrides = [(b, o) for b, o in boards_and_overrides if b.name in wanted or b.device in wanted]
        if not boards_and_overrides:
            raise ConfigError(f"plan {path}: --only {','.join(sorted(wanted))} matches no board; "
                              f"boards: {', '.join(names)}")
    planned_map = data.get("hardware_map")
    if hardware_map is None and isinstance(planned_map, str):
        hardware_map = path.parent / planned_map
    if hardware_map is not None and not hardware_map.is_file():
        raise ConfigError(f"plan {path}: hardware map {hardware_map} not found; draft one with "
                          "`tiny-profiler devices --write-map FILE`")
    plan = Plan(path=path, boards=[b for b, _ in boards_and_overrides], hardware_map=hardware_map,
                coordinator=data.get("coordinator") if isinstance(data.get("coordinator"), str) else None)
    for board, overrides in boards_and_overrides:
        plan.sessions[board.name] = _expand(path, board, base, matrix, overrides)
    return plan


def _axis(path: Path, board: PlanBoard, key: str, values: list[Any]) -> list[Any]:
    """Check an axis's values where the plan can (kernel sets of the board's port, meter spec syntax)."""
    where = f"board {board.name}"
    for value in values:
        try:
            if key == "kernels" and value is not None and board.device is not None:
                from profiler.firmware import resolve_kernels

                profile = resolve_board(board.device)
                if profile.firmware_port is None:
                    raise ConfigError(f"kernels cannot be chosen: {profile.name} has {profile.no_port_reason}")
                resolve_kernels(profile.firmware_port, value)
            elif key == "power" and value not in (None, "model"):
                from profiler.power import parse_spec

                parse_spec(value)
        except ConfigError as exc:
            raise ConfigError(f"{_where(path, where)}: {exc}") from None
    return values


def _expand(path: Path, board: PlanBoard, base: dict[str, Any], matrix: dict[str, Any],
            overrides: dict[str, Any]) -> list[SessionSpec]:
    where = f"board {board.name}"
    run = dict(base)
    run.update({k: _typed(path, where, k, v, RUN_KEYS[k]) for k, v in overrides.items()
                if k in RUN_KEYS and k not in AXES})
    merged = {**matrix, **{k: v for k, v in overrides.items() if k in MATRIX_KEYS}}
    quantizations = _list(path, where, "quantizations", merged["quantizations"], str) \
        if "quantizations" in merged else None
    for quant in quantizations or []:
        if quant not in QUANTIZATIONS:
            raise ConfigError(f"{_where(path, where)}: quantization {quant!r} is not one of {', '.join(QUANTIZATIONS)}")
    if "models" not in merged:
        raise ConfigError(f"{_where(path, where)}: no models; set [matrix] models = [\"demo\"]")
    models = _models(path, where, _list(path, where, "models", merged["models"], object), quantizations)
    prompts = _list(path, where, "prompts", merged["prompts"], str) if "prompts" in merged \
        else [run.get("prompt", DEFAULT_PROMPT)]
    axes: dict[str, list[Any]] = {}
    for key, (kind, default) in AXES.items():
        source = overrides.get(key, matrix.get(key, base.get(key, default)))
        axes[key] = _axis(path, board, key, [None] if source is None else _list(path, where, key, source, kind))
    sessions = []
    for model, prompt, *values in itertools.product(models, prompts, *axes.values()):
        settings = dict(zip(axes, values, strict=True))
        spec = SessionSpec(board=board, model=model, prompt=prompt, repeat=run.get("repeat", 5),
                           warmup=run.get("warmup", 1), flash=run.get("flash", True), **settings)
        if spec.tokens < 1 or spec.repeat < 1 or spec.warmup < 0:
            raise ConfigError(f"{_where(path, where)}: tokens and repeat must be at least 1, warmup at least 0")
        sessions.append(spec)
    return sessions
