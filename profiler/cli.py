"""The `tiny-profiler` command line: a thin typer layer over `profiler.api`.

Exceptions become exit codes in one place (`exit_code`, called by the root group): a ProfilerError prints
one line and exits with its class's code; `--traceback` shows the stack.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import typer.core
from rich.console import Console

from profiler import __version__
from profiler.errors import ConfigError, InternalError, PlatformError, ProfilerError, Stopped, interruption
from profiler.outputs import caused_by_environment, check_directory, check_file, results_error


class _ExitCodes(typer.core.TyperGroup):
    """The root command group: every exception of the callback or a command meets `exit_code` here, once."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except BaseException as error:
            code = exit_code(error)
            if code is None:
                raise
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=_ExitCodes,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Hardware-in-the-loop profiling of quantized tiny LLMs on microcontrollers.",
)
model_app = typer.Typer(no_args_is_help=True, help="Convert and inspect models.")
app.add_typer(model_app, name="model")

_state = {"traceback": False}


def exit_code(error: BaseException) -> int | None:
    """Print the one line for `error` and return its exit code; None for what is not ours to map (SystemExit,
    click's own usage errors)."""
    if isinstance(error, KeyboardInterrupt):
        return _report(interruption(error, partial=False))
    if isinstance(error, ProfilerError):
        return _report(error)
    if isinstance(error, typer.TyperException | typer.Exit | typer.Abort | SystemExit):
        return None  # usage errors and exits keep click's own message and code
    if isinstance(error, OSError) and caused_by_environment(error):
        # A file the user named, or a disk that filled, not a bug: say which file and why.
        return _report(results_error(Path(error.filename), error))
    if isinstance(error, Exception):  # a bug: still one line unless --traceback
        return _report(_internal(error))
    return None


def _internal(error: Exception) -> InternalError:
    wrapped = InternalError(f"internal error {type(error).__name__}: {error}; re-run with --traceback and report it")
    wrapped.__traceback__ = error.__traceback__
    return wrapped


def _version(value: bool) -> None:
    if value:
        print(f"tiny-profiler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    traceback: Annotated[bool, typer.Option("--traceback", help="Show the Python stack on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
    config: Annotated[
        Optional[Path],
        typer.Option(help="Option defaults per command (default: $TINY_PROFILER_CONFIG or ./tiny-profiler.toml); "
                          "see docs/configuration.md."),
    ] = None,
) -> None:
    _state["traceback"] = traceback
    from profiler.config import find_config, load_defaults

    path = find_config(config)
    if path is not None and isinstance(ctx.command, typer.core.TyperGroup):
        commands = {name: command for name, command in ctx.command.commands.items()
                    if not isinstance(command, typer.core.TyperGroup)}
        ctx.default_map = load_defaults(path, commands)


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise ConfigError(f"cannot read {option} {path}: {reason}; pass a UTF-8 text file") from None


@app.command()
def run(
    model: Annotated[str, typer.Option(help="Model file (.tpm) or a bundled model name such as demo.")],
    device: Annotated[
        Optional[str],
        typer.Option(help="Board or family: stm32, stm32f405, esp32c3, riscv, ... (or take it from --board)."),
    ] = None,
    prompt: Annotated[str, typer.Option(help="Prompt text, encoded with the model's tokenizer.")] = "Once upon a time",
    tokens: Annotated[int, typer.Option(help="Tokens to generate per repetition.")] = 32,
    repeat: Annotated[int, typer.Option(help="Measured repetitions (5 or more for a valid run).")] = 5,
    warmup: Annotated[int, typer.Option(help="Warmup repetitions, recorded but not summarised.")] = 1,
    seed: Annotated[int, typer.Option(help="Sampling seed (used when --temperature > 0).")] = 0,
    temperature: Annotated[float, typer.Option(help="0 is greedy.")] = 0.0,
    out: Annotated[Path, typer.Option(help="Directory for the session JSONL.")] = Path("results"),
    emulate: Annotated[
        Optional[bool],
        typer.Option("--emulate/--no-emulate", help="Run on the emulated board (default without --port)."),
    ] = None,
    port: Annotated[
        Optional[str],
        typer.Option(help="Serial port or URL of a real board (socket://, rfc2217://)."),
    ] = None,
    flash: Annotated[bool, typer.Option("--flash/--no-flash", help="Flash firmware and model before running.")] = True,
    board: Annotated[
        Optional[str],
        typer.Option(help="A bench board named in the hardware map (port, flasher, reset, probe)."),
    ] = None,
    hardware_map: Annotated[
        Optional[Path],
        typer.Option(help="Hardware map TOML (default: $TINY_PROFILER_HARDWARE_MAP or ./hardware-map.toml)."),
    ] = None,
    flasher: Annotated[
        Optional[str],
        typer.Option(help="pyocd, openocd, st-flash or dfu (STM32); esptool (ESP32); openocd (RISC-V)."),
    ] = None,
    power: Annotated[
        Optional[str],
        typer.Option(help="Power meter: ppk2:PORT?voltage_mv=3300, joulescope, or model (default on emulated boards)."),
    ] = None,
    kernels: Annotated[
        Optional[str],
        typer.Option(help="Matmul kernels to build: dsp or portable (STM32), rv32 or portable (RISC-V); "
                          "default: the port's own."),
    ] = None,
    check_quality: Annotated[
        bool, typer.Option("--check-quality", help="Also compare the board's logits on a short text with the fp32 "
                                                   "model (NAME-fp32.bin beside the model, or --quality-reference).")
    ] = False,
    quality_reference: Annotated[
        Optional[Path],
        typer.Option(help="The fp32 llama2.c checkpoint --check-quality compares with."),
    ] = None,
    quality_text: Annotated[
        Optional[Path],
        typer.Option(help="Text file for --check-quality (default: a short built-in story)."),
    ] = None,
    predict: Annotated[
        bool, typer.Option("--predict", help="Emulated boards: also predict the real chip's decode rate with the "
                                             "core's cycle model (traces the first repetition; slower).")
    ] = False,
    place: Annotated[
        Optional[str],
        typer.Option(help="A labgrid place (coordinator from LG_COORDINATOR): acquired, its serial used, released."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary record as JSON on stdout.")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Print the summary row as json, csv or md.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="Write JUnit XML: the session as one testcase.")] = None,
    pushgateway: Annotated[
        Optional[str],
        typer.Option(help="Pushgateway URL (or TINY_PROFILER_PUSHGATEWAY); pushed at the end and every 15 s."),
    ] = None,
    metrics_port: Annotated[
        Optional[int],
        typer.Option(help="Serve /metrics on this port while the session runs."),
    ] = None,
    otlp_endpoint: Annotated[
        Optional[str],
        typer.Option(help="OTLP/HTTP base URL for spans (or OTEL_EXPORTER_OTLP_ENDPOINT)."),
    ] = None,
    strict_export: Annotated[bool, typer.Option(help="Fail (exit 11) when an exporter fails.")] = False,
    log_file: Annotated[Path, typer.Option(help="Structured JSON log file.")] = Path("logs/profiler.jsonl"),
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    hello_timeout: Annotated[
        Optional[float],
        typer.Option(envvar="TINY_PROFILER_HELLO_TIMEOUT", show_envvar=True,
                     help="Seconds to wait for the board's HELLO, asking again meanwhile (default 20)."),
    ] = None,
    frame_timeout: Annotated[
        Optional[float],
        typer.Option(envvar="TINY_PROFILER_FRAME_TIMEOUT", show_envvar=True,
                     help="Seconds to wait for the next frame a repetition owes: its first, each token, its end "
                          "(default 60). Noise and stray frames never extend it."),
    ] = None,
) -> None:
    """Profile MODEL on DEVICE: flash, connect, warm up, repeat, summarise."""
    from profiler import ci_formats
    from profiler.api import RunOptions, plan_run
    from profiler.lab.labgrid_place import plan_on_place, rfc2217_reset_note
    from profiler.sinks.console import ConsoleSink
    from profiler.sinks.options import ObservabilityOptions, make_sinks

    ci_formats.check_format(fmt)
    console = Console(stderr=json_out or fmt is not None)
    errors = Console(stderr=True)
    check_file(log_file, "--log-file")
    observability = ObservabilityOptions.from_cli(
        pushgateway, metrics_port=metrics_port, otlp_endpoint=otlp_endpoint, strict_export=strict_export,
        log_file=log_file, log_level=log_level,
    )
    options = RunOptions(
        device=device, model=model, prompt=prompt, tokens=tokens, repeat=repeat, warmup=warmup,
        seed=seed, temperature=temperature, out=out, emulate=emulate, port=port, flash=flash,
        extra_sinks=(ConsoleSink(console),), board=board, hardware_map=hardware_map, flasher=flasher, power=power,
        kernels=kernels, check_quality=check_quality, quality_reference=quality_reference,
        quality_text=_read_text(quality_text, "--quality-text") if quality_text else None, predict=predict,
        hello_timeout=hello_timeout, frame_timeout=frame_timeout,
    )
    session, path = plan_on_place(
        options, place, plan_run,
        sinks=lambda jsonl: make_sinks(observability, jsonl, lambda m: errors.print(f"warning: {m}", markup=False)),
    )
    target = session.target
    session.notify = lambda message: errors.print(f"note: {message}", markup=False, highlight=False)
    note = rfc2217_reset_note(target.port, target.flash, target.adapter.options.reset_method or
                              target.board.reset_method, target.board.name)
    if note:
        errors.print(f"note: {note}", markup=False, highlight=False)
    try:
        summary = session.run()
    except BaseException:
        if junit is not None:  # CI still gets its testcase: an error with the session's own reason
            ci_formats.write_stopped_run_junit(junit, path)
        raise
    finally:
        console.print(f"results: {path}")
    identity = ci_formats.run_identity(ci_formats.read_header(path), path)
    if json_out:
        print(json.dumps({**summary.to_dict(), **identity}))
    if fmt is not None:
        print(ci_formats.format_rows([ci_formats.run_row(identity, summary.to_dict())], fmt))
    if junit is not None:
        ci_formats.write_run_junit(junit, identity, summary.to_dict())
    if not summary.valid:
        raise typer.Exit(1)


@app.command()
def devices(
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON on stdout.")] = False,
    write_map: Annotated[
        Optional[Path],
        typer.Option(help="Draft a hardware map (TOML) from what is plugged in."),
    ] = None,
) -> None:
    """List serial ports and USB probes with the board family they suggest, and what blocks them."""
    from profiler.doctor.devices import show_devices

    if write_map is not None:
        check_file(write_map, "--write-map")
    show_devices(json_out, write_map)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Session JSONL files or directories of them.")],
    baseline: Annotated[
        Optional[Path],
        typer.Option(help="Baseline file or directory (default: the first RUN)."),
    ] = None,
    threshold: Annotated[str, typer.Option(help="Regression threshold on the median, e.g. 5%.")] = "5%",
    alpha: Annotated[float, typer.Option(help="Significance level of the Mann-Whitney U test.")] = 0.05,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 when a metric is worse and significant.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="rich, md, csv or json.")] = "rich",
    plot: Annotated[Optional[Path], typer.Option(help="Also write the tok/s plot to this PNG.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="Write JUnit XML: a testcase per gated metric and run.")] = None,
) -> None:
    """Compare runs: median, stddev and 95% CI per metric, deltas to a baseline, a regression gate."""
    from profiler.compare.format import print_comparison
    from profiler.compare.runs import compare_runs, parse_threshold

    if plot is not None:
        check_file(plot, "--plot")
    comparison = compare_runs(runs, baseline, parse_threshold(threshold), alpha)
    print_comparison(comparison, fmt)
    if plot is not None:
        from profiler.compare.report import plot_rates

        plot_rates(comparison, plot)
    if junit is not None:
        from profiler.ci_formats import write_compare_junit

        write_compare_junit(junit, comparison)
    if fail_on_regression and comparison.gate_failed:
        raise typer.Exit(1)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Session JSONL files or directories of them.")],
    out: Annotated[
        Optional[Path],
        typer.Option("-o", "--out", help="Directory for the PNGs, summary.md and report.html."),
    ] = None,
    baseline: Annotated[
        Optional[Path],
        typer.Option(help="Baseline file or directory (default: the first RUN)."),
    ] = None,
    threshold: Annotated[str, typer.Option(help="Regression threshold on the median, e.g. 5%.")] = "5%",
    trace_events: Annotated[
        Optional[Path],
        typer.Option("--trace-events", help="Also write the sessions as Chrome/Perfetto trace-event JSON."),
    ] = None,
) -> None:
    """Write figures, summary.md and a self-contained report.html; optionally a trace-event JSON."""
    from profiler.compare.format import print_warnings
    from profiler.compare.report import write_report
    from profiler.compare.runs import compare_runs, parse_threshold

    if out is None and trace_events is None:
        raise ConfigError("report needs -o DIR (figures and report.html) or --trace-events FILE.json")
    if out is not None:
        check_directory(out, "--out", create=False)
    if trace_events is not None:
        check_file(trace_events, "--trace-events")
    comparison = compare_runs(runs, baseline, parse_threshold(threshold))
    print_warnings(comparison)
    if out is not None:
        summary, html, *plots = write_report(comparison, out)
        print(f"wrote {html}, {summary.name} and {len(plots)} figures: {', '.join(p.name for p in plots)}")
    if trace_events is not None:
        from profiler.compare.reporting.trace_events import write_trace_events

        print(f"wrote {write_trace_events(comparison.columns, trace_events)} (open it in ui.perfetto.dev)")


@model_app.command("convert")
def model_convert(
    checkpoint: Annotated[Path, typer.Argument(help="llama2.c checkpoint (.bin: legacy, v1, v2) or GGUF llama model.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output model file (.tpm).")],
    tokenizer: Annotated[Optional[Path], typer.Option(help="tokenizer.bin; default: beside the checkpoint, or the GGUF's own.")] = None,  # noqa: E501
    quant: Annotated[str, typer.Option(help="Weight quantization: int8 or int4.")] = "int8",
    group_size: Annotated[int, typer.Option(help="Quantization group length along a row.")] = 32,
    seq_len: Annotated[Optional[int], typer.Option(help="Cap the context the board allocates for.")] = None,
) -> None:
    """Convert a llama2.c checkpoint or a GGUF llama model into the firmware's model format."""
    from profiler.models.convert import convert

    check_file(output, "--output")
    model = convert(checkpoint, tokenizer, output, quant=quant, group_size=group_size, seq_len=seq_len)
    cfg = model.config
    print(
        f"wrote {output} ({output.stat().st_size:,} bytes): dim {cfg.dim}, hidden {cfg.hidden_dim}, "
        f"{cfg.n_layers} layers, {cfg.n_heads}/{cfg.n_kv_heads} heads, vocab {cfg.vocab_size}, "
        f"seq_len {cfg.seq_len}, {quant} groups of {cfg.group_size}"
    )


@model_app.command("inspect")
def model_inspect(
    model: Annotated[str, typer.Argument(help="Model file (.tpm) or a bundled model name such as demo.")],
    device: Annotated[Optional[str], typer.Option(help="Board: fit, margins and tokens/s ceilings.")] = None,
    no_build: Annotated[bool, typer.Option("--no-build", help="Estimate the arena from the board profile.")] = False,
) -> None:
    """Parameters, MACs and bytes per token, RAM needed; with --device, fit and throughput ceilings."""
    from platforms import resolve_board
    from profiler.api import resolve_model_path
    from profiler.fit_check import board_fit, report_lines
    from profiler.models.format import read_header

    path = resolve_model_path(model)
    header = read_header(path)
    fit = board_fit(resolve_board(device), header, build_firmware=not no_build) if device else None
    print("\n".join(report_lines(str(path), header, fit)))


@model_app.command("fit")
def model_fit(
    model: Annotated[str, typer.Argument(help="Model file (.tpm) or a bundled model name such as demo.")],
    build: Annotated[bool, typer.Option("--build", help="Read each arena from the built firmware ELF.")] = False,
) -> None:
    """One table over every board: does the model fit (flash, RAM, margins), and its tokens/s ceilings."""
    from platforms.boards import BOARDS
    from profiler.api import resolve_model_path
    from profiler.fit_check import fit_table
    from profiler.models.format import read_header

    path = resolve_model_path(model)
    print("\n".join(fit_table(read_header(path), list(BOARDS), build_firmware=build)))


@model_app.command("eval")
def model_eval(
    model: Annotated[str, typer.Argument(help="Quantized model (.tpm) or a bundled model name such as demo.")],
    text: Annotated[Path, typer.Option(help="Text to predict: one story or paragraph per line.")],
    reference: Annotated[
        Optional[Path],
        typer.Option(help="Float model it came from (llama2.c .bin or GGUF); default for a bundled model: its fp32."),
    ] = None,
    max_windows: Annotated[Optional[int], typer.Option(help="Stop after this many context windows.")] = None,
    fixed_point: Annotated[
        bool, typer.Option("--fixed-point", help="Use the fixed-point arithmetic of boards without an FPU.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Quantization error against the fp32 model: top-1 agreement, mean KL, perplexity of both."""
    from profiler.api import resolve_model_path
    from profiler.models.evaluate import default_reference, eval_lines, evaluate
    from profiler.models.format import TpmModel

    path = resolve_model_path(model)
    quantized = TpmModel.read(path)
    ref_path = reference or default_reference(path)
    weights = None
    if ref_path is not None:
        from profiler.models.convert import read_float_weights

        weights = read_float_weights(ref_path)
    content = _read_text(text, "--text")
    result = evaluate(quantized, content, weights, max_windows, fixed_point)
    if json_out:
        print(json.dumps({"model": str(path), "reference": str(ref_path) if ref_path else None, **result.to_dict()}))
        return
    print("\n".join(eval_lines(result, path, text, ref_path if weights is not None else None)))


@app.command()
def bench(
    plan: Annotated[Path, typer.Argument(metavar="PLAN.toml", help="Bench plan (see examples/plan-emulated.toml).")],
    out: Annotated[
        Optional[Path],
        typer.Option(help="Run directory for the session files and summaries (default: results/bench-<UTC time>)."),
    ] = None,
    jobs: Annotated[
        Optional[int],
        typer.Option(help="Emulated boards running at once (default: CPU count); real boards all run in parallel."),
    ] = None,
    only: Annotated[
        Optional[str],
        typer.Option(help="Comma-separated board names (or devices) of the plan to run."),
    ] = None,
    baseline: Annotated[
        Optional[Path],
        typer.Option(help="Baselines directory (results/baselines): each session is set against its key's."),
    ] = None,
    threshold: Annotated[str, typer.Option(help="Regression threshold on the median, e.g. 5%.")] = "5%",
    alpha: Annotated[float, typer.Option(help="Significance level of the Mann-Whitney U test.")] = 0.05,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 when a metric is worse and significant.")
    ] = False,
    pushgateway: Annotated[
        Optional[str],
        typer.Option(help="Pushgateway URL (or TINY_PROFILER_PUSHGATEWAY) for every session."),
    ] = None,
    otlp_endpoint: Annotated[
        Optional[str],
        typer.Option(help="OTLP/HTTP base URL for spans (or OTEL_EXPORTER_OTLP_ENDPOINT)."),
    ] = None,
    strict_export: Annotated[bool, typer.Option(help="A session whose exporter fails fails (exit 11).")] = False,
    hardware_map: Annotated[
        Optional[Path],
        typer.Option(help="Hardware map for the plan's `board` entries, instead of the plan's own hardware_map.",
                     envvar="TINY_PROFILER_HARDWARE_MAP"),
    ] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Print the session rows as json, csv or md.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="Write JUnit XML: a testcase per session.")] = None,
) -> None:
    """Run a plan: boards in parallel, sessions per board in order, summary.json/.md, optional regression gate."""
    import os

    from profiler.bench.report import GateOptions, default_run_dir
    from profiler.bench.report import bench as run_plan
    from profiler.bench.run import BenchOptions, BenchRun
    from profiler.compare.runs import parse_threshold

    if jobs is not None and jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    if out is not None:
        check_directory(out, "--out", create=False)
    options = BenchOptions(
        out=out or default_run_dir(), jobs=jobs or os.cpu_count() or 1,
        sink_options={"pushgateway": pushgateway or os.environ.get("TINY_PROFILER_PUSHGATEWAY") or None,
                      "otlp_endpoint": otlp_endpoint},
        strict_export=strict_export,
    )
    gate = None if baseline is None else GateOptions(baseline, parse_threshold(threshold), alpha, fail_on_regression)
    from profiler import ci_formats

    ci_formats.check_format(fmt)

    def ci_outputs(done: BenchRun) -> None:
        if fmt is not None:
            print(ci_formats.format_rows(ci_formats.bench_rows(done), fmt))
        if junit is not None:
            ci_formats.write_bench_junit(junit, done)

    code = run_plan(plan, options, only.split(",") if only else None, gate, Console(stderr=fmt is not None),
                    hardware_map, ci_outputs)
    if code:
        raise typer.Exit(code)


@app.command()
def emulate(
    model: Annotated[str, typer.Option(help="Model file (.tpm) or a bundled model name such as demo.")],
    device: Annotated[str, typer.Option(help="An emulated board: stm32 or riscv.")] = "stm32",
    serial: Annotated[str, typer.Option(help="pty (a /dev/pts path) or socket (socket://127.0.0.1:PORT).")] = "pty",
    tcp_port: Annotated[
        Optional[int],
        typer.Option(help="TCP port for --serial socket (default: a free one)."),
    ] = None,
) -> None:
    """Run an emulated board until stopped; prints `serial: URL` for ser2net, labgrid, a terminal or `run --port`."""
    from profiler.emulate_serve import serve

    if tcp_port is not None and not 1 <= tcp_port <= 65535:
        raise ConfigError(f"--tcp-port {tcp_port} is not a TCP port; use 1..65535 or leave it out for a free one")
    served, description = serve(device, model, serial, tcp_port)
    try:
        print(f"serial: {served.url}", flush=True)
        print(description, file=sys.stderr, flush=True)
        code = served.wait()
        raise PlatformError(f"the emulated board exited by itself (status {code}): "
                            f"{(served.output().strip().splitlines() or ['no output'])[-1]}")
    except KeyboardInterrupt:
        return  # Ctrl-C or SIGTERM: the normal way to stop it
    finally:
        served.close()


@app.command()
def doctor(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON on stdout.")] = False,
) -> None:
    """Check everything a run can need; exit 0 when the emulated default can run (other gaps are listed)."""
    import os

    from profiler.doctor.show import show_doctor

    run_defaults = (ctx.find_root().default_map or {}).get("run", {})  # tiny-profiler.toml, if any
    pushgateway = os.environ.get("TINY_PROFILER_PUSHGATEWAY") or run_defaults.get("pushgateway")
    otlp = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or run_defaults.get("otlp_endpoint"))
    if not show_doctor(json_out, pushgateway, otlp, Path(run_defaults.get("out", "results"))):
        raise typer.Exit(6)  # ToolMissing's code: what the emulated default needs is not installed


baseline_app = typer.Typer(no_args_is_help=True, help="Baselines for the regression gate.")
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("accept")
def baseline_accept(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by bench (or run).")],
    baselines: Annotated[Path, typer.Option(help="Baselines directory.")] = Path("results/baselines"),
) -> None:
    """Make the valid sessions of RUN_DIR the baselines of their (board, model, quantization)."""
    from profiler.compare.baseline import accept

    check_directory(baselines, "--baselines")
    written, notes = accept(run_dir, baselines)
    for item in written:
        print(f"{'replaced' if item.replaced else 'added'} {item.target} (from {item.source.name})")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def _stop_signal(signum: int, frame: object) -> None:
    # SIGTERM (CI cancelling a job) and SIGHUP (a closed terminal or SSH session) end a session the way
    # Ctrl-C does: closing records written, QEMU reaped, exit 130.
    raise Stopped(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _stop_signal)
    try:
        app(args=argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def _report(error: ProfilerError) -> int:
    if _state["traceback"]:
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__)
    print(f"error: {error}", file=sys.stderr)
    return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
