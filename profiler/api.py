"""The typed API under the CLI: everything `tiny-profiler run` does, callable from Python.

`plan_run` checks every input before anything is launched (device, model,
prompt, context, tools, firmware, fit), so bad input costs a second and one
clear line, not a QEMU boot.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from platforms.boards import BoardProfile
from profiler.emulator import require_binary
from profiler.errors import ConfigError, FitError, ModelError
from profiler.lab.lock import BoardLock
from profiler.lab.placement import place
from profiler.link.transport import Deadlines
from profiler.models.fit import check_fit
from profiler.models.format import TpmModel, read_header
from profiler.models.reference import Reference
from profiler.outputs import check_directory
from profiler.power import open_meter, parse_spec
from profiler.power.telemetry import InaPower, MeterPower, ModelPower, PowerSource, board_models
from profiler.records import RunSettings
from profiler.reference_cache import ReferencePasses, port_fixed_point
from profiler.session import ModelHandle, Session, Target
from profiler.sinks import Sink
from profiler.sinks.jsonl import JsonlSink

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
DEFAULT_PROMPT = "Once upon a time"


@dataclass(frozen=True)
class RunOptions:
    """The inputs of `tiny-profiler run`."""

    device: str | None
    model: str
    prompt: str = DEFAULT_PROMPT
    tokens: int = 32
    repeat: int = 5
    warmup: int = 1
    seed: int = 0
    temperature: float = 0.0
    out: Path = Path("results")
    emulate: bool | None = None
    port: str | None = None
    flash: bool = True
    extra_sinks: Sequence[Sink] = field(default_factory=tuple)
    check_quality: bool = False  # the board's logits on a short text against the fp32 model
    quality_reference: Path | None = None  # the fp32 model; default NAME-fp32.bin beside the model
    quality_text: str | None = None  # default: a short built-in story
    board: str | None = None  # a bench board from the hardware map
    hardware_map: Path | None = None
    flasher: str | None = None
    kernels: str | None = None  # matmul kernel set (portable, dsp); default: the port's own
    power: str | None = None  # meter spec (ppk2:/dev/ttyACM1, joulescope, model); default: the model on emulated boards
    predict: bool = False  # emulated boards: predict the real chip's cycles (traces the first repetition)
    hello_timeout: float | None = None  # seconds; default Deadlines.hello_s
    frame_timeout: float | None = None  # seconds; default Deadlines.frame_s


def bundled_models() -> list[str]:
    """Names of the models shipped with the profiler."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.tpm"))


def resolve_model_path(spec: str) -> Path:
    """A model path, or the name of a bundled model (`demo`)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    bundled = BUNDLED_DIR / f"{spec}.tpm"
    if "/" not in spec and bundled.is_file():
        return bundled
    if path.exists():
        raise ModelError(f"{spec} is not a file; pass a model file or one of: {', '.join(bundled_models())}")
    raise ModelError(
        f"model {spec} not found; pass a model file (convert one with `tiny-profiler model convert`) "
        f"or a bundled model: {', '.join(bundled_models())}"
    )


def open_model(path: Path) -> tuple[TpmModel, ModelHandle]:
    """Read and validate a model; the handle carries its identity, tokenizer and reference."""
    data = path.read_bytes()
    model = TpmModel.from_bytes(data, str(path))
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise ModelError(f"{path} has no tokenizer block; re-convert it with its tokenizer.bin")
    references: dict[bool, Reference] = {}  # one per arithmetic the boards report

    def reference_tokens(prompt: Sequence[int], n: int, temperature: float, seed: int,
                         fixed_point: bool = False) -> list[int]:
        if fixed_point not in references:
            references[fixed_point] = Reference(model, fixed_point)
        return references[fixed_point].generate(list(prompt), n, temperature, seed)

    sha256 = hashlib.sha256(data).hexdigest()
    handle = ModelHandle(
        path=path,
        name=path.stem,
        sha256=sha256,
        crc32=_crc32(data),
        size_bytes=len(data),
        quantization=read_header(path).quant,
        token_bytes=tokenizer.decode_piece,
        reference_tokens=ReferencePasses(sha256, reference_tokens),  # cached on disk, prefetched by plan_run
        vocab_size=model.config.vocab_size,
    )
    return model, handle


def _crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def power_source(spec: str | None, board: BoardProfile, emulate: bool) -> PowerSource | None:
    """What measures power: the given meter, else the board model on an emulated board, else nothing."""
    models = board_models(board)
    if spec is None or spec.strip() == "model":
        if spec is None and not emulate:
            return None
        if models is None:
            raise ConfigError(f"{board.name} has no power model; pass --power with a meter")
        return ModelPower(*models, supply_mv=board.supply_mv)
    parsed = parse_spec(spec)
    if parsed.kind in ("ina219", "ina226"):
        period = parsed.int_option("period_us", 100, 1_000_000) or 0
        return InaPower(parsed.kind, emulated=emulate, sample_period_us=period)
    return MeterPower(open_meter(parsed), supply_mv=board.supply_mv)


def _deadlines(options: RunOptions) -> Deadlines:
    """The waits on the board, with --hello-timeout / --frame-timeout where given."""
    default = Deadlines()
    hello = default.hello_s if options.hello_timeout is None else options.hello_timeout
    frame = default.frame_s if options.frame_timeout is None else options.frame_timeout
    for name, value in (("--hello-timeout", hello), ("--frame-timeout", frame)):
        if not 0.1 <= value <= 86_400:  # also refuses nan
            raise ConfigError(f"{name} {value} is not a number of seconds from 0.1 to 86400; pick one in range")
    return Deadlines(hello_s=hello, frame_s=frame, probe_s=min(default.probe_s, hello))


def plan_run(options: RunOptions, sinks: Callable[[Path], list[Sink]] | None = None) -> tuple[Session, Path]:
    """Validate everything, build the firmware if needed, and return a ready session."""
    if options.tokens < 1 or options.repeat < 1 or options.warmup < 0:
        raise ConfigError("--tokens and --repeat must be at least 1 and --warmup at least 0")
    if not math.isfinite(options.temperature) or options.temperature < 0:
        raise ConfigError(f"--temperature {options.temperature} is not a finite number >= 0; use 0 for greedy "
                          "decoding or a positive sampling temperature such as 0.8")
    if not 0 <= options.seed < 1 << 32:
        raise ConfigError(f"--seed {options.seed} is outside 0..{(1 << 32) - 1}; the board's sampler takes 32 bits")
    try:
        options.prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("--prompt is not valid UTF-8 text (check the terminal's or the script's encoding); "
                          "pass the prompt as UTF-8") from None
    deadlines = _deadlines(options)
    placement = place(options.device, port=options.port, emulate=options.emulate, bench=options.board,
                      hardware_map=options.hardware_map, flasher=options.flasher, hello_s=deadlines.hello_s)
    board, adapter, emulate, port = placement.board, placement.adapter, placement.emulate, placement.port
    path = resolve_model_path(options.model)
    model, handle = open_model(path)
    assert model.tokenizer is not None
    prompt_tokens = tuple(model.tokenizer.encode(options.prompt, bos=True))
    cfg = model.config
    if len(prompt_tokens) + options.tokens - 1 > cfg.seq_len:
        raise ConfigError(
            f"{len(prompt_tokens)} prompt tokens + {options.tokens} new tokens need a context of "
            f"{len(prompt_tokens) + options.tokens - 1}, but {handle.name} has seq_len {cfg.seq_len}; "
            "use a shorter prompt or fewer --tokens"
        )
    check_directory(options.out, "--out", create=False)
    quality_tokens: tuple[int, ...] = ()
    if options.check_quality:
        from profiler.models.evaluate import plan_quality_check

        quality_tokens, check = plan_quality_check(model, path, options.quality_reference, options.quality_text)
        handle = dataclasses.replace(handle, quality_check=check)
    firmware = adapter.firmware(board, options.kernels) if (emulate or options.flash) else None
    if emulate:
        assert firmware is not None
        spec = adapter.emulate(board, firmware.elf, path).spec
        require_binary(spec.binary, spec.debian_package)
    if firmware is not None:
        check_fit(handle.size_bytes, cfg, board.model_region_bytes, firmware.arena_total_bytes, board.name)
    elif handle.size_bytes > board.model_region_bytes:
        raise FitError(f"{handle.name} needs {handle.size_bytes / 1024:.1f} KB of flash but "
                       f"{board.name} has {board.model_region_bytes / 1024:.1f} KB for models")
    settings = RunSettings(
        prompt=options.prompt,
        prompt_tokens=prompt_tokens,
        tokens=options.tokens,
        repetitions=options.repeat,
        warmup=options.warmup,
        temperature=options.temperature,
        seed=options.seed,
        quality_tokens=quality_tokens,
        predict=options.predict,
    )
    target = Target(board=board, adapter=adapter, firmware=firmware, emulate=emulate,
                    port=port, flash=options.flash, power=power_source(options.power, board, emulate))
    session = Session(target=target, model=handle, settings=settings, sinks=[], deadlines=deadlines)
    if not emulate and port is not None:  # one board, one user: a second profiler stops here, before any file
        session.holds.append(BoardLock.acquire(port))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    jsonl_path = options.out / f"{stamp}-{board.name}-{handle.name}-{session.session_id}.jsonl"
    try:
        others = sinks(jsonl_path) if sinks else []  # may refuse (e.g. a busy --metrics-port): no file yet
    except BaseException:
        for held in session.holds:
            held.close()
        raise
    session.sinks = [JsonlSink(jsonl_path), *options.extra_sinks, *others]
    if isinstance(handle.reference_tokens, ReferencePasses):  # computed while the board boots, or cached
        handle.reference_tokens.prefetch(prompt_tokens, options.tokens, options.temperature, options.seed,
                                         board.firmware_port is not None and port_fixed_point(board.firmware_port))
    return session, jsonl_path

