"""Live rich display while a session runs, and the summary table at its end."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from profiler.records import (
    ErrorRecord,
    EventRecord,
    Record,
    RepetitionRecord,
    SessionHeader,
    SummaryRecord,
    TokenRecord,
)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def progress_columns() -> tuple[ProgressColumn, ...]:
    """One bar over all the work (tokens of every repetition, or of every session of a plan), with an ETA."""
    return (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[rate]}"))


class ConsoleSink:
    """One progress bar across warmup and repetitions (ETA, live device-timed tok/s); a summary table at the end."""

    def __init__(self, console: Console, show_summary: bool = True) -> None:
        self.console = console
        self.show_summary = show_summary
        self._progress = Progress(*progress_columns(), console=console, transient=False)
        self._task: TaskID | None = None
        self._first_ms = 0.0
        self._last_rate = ""
        self._header: SessionHeader | None = None

    def emit(self, record: Record) -> None:
        if isinstance(record, SessionHeader):
            self._header = record
            where = "emulated " if record.emulated else ""
            self.console.print(
                f"[bold]{where}{record.board}[/] @ {record.clock_hz / 1e6:.0f} MHz, firmware "
                f"{record.firmware_id}, model {record.model} ({record.quantization}), "
                f"{len(record.prompt_tokens)} prompt tokens + {record.tokens} generated, "
                f"{record.warmup} warmup + {record.repetitions} repetitions"
            )
            total = (record.warmup + record.repetitions) * record.tokens
            self._task = self._progress.add_task("starting", total=total, rate="")
            self._progress.start()
        elif isinstance(record, TokenRecord):
            self._on_token(record)
        elif isinstance(record, RepetitionRecord) and self._task is not None:
            mark = "" if record.valid else " [red]invalid[/]"
            self._last_rate = f"last {_fmt(record.decode_tokens_per_s)} tok/s (device){mark}"
            self._progress.update(self._task, rate=self._last_rate)
        elif isinstance(record, EventRecord):
            self.console.print(f"[yellow]warning ({record.kind}):[/] {record.message}")
        elif isinstance(record, ErrorRecord):
            self._progress.stop()
            self.console.print(f"[red]stopped ({record.kind}):[/] {record.message}")
        elif isinstance(record, SummaryRecord):
            if self._task is not None and record.status == "ok":
                self._progress.update(self._task, completed=self._progress.tasks[0].total)
            self._progress.stop()
            if self.show_summary:
                self.console.print(summary_table(record, self._header))
                if record.text:
                    prompt = self._header.prompt if self._header else ""
                    self.console.print(Text.assemble(("text: ", "dim"), (prompt, "bold"), record.text))

    def _on_token(self, record: TokenRecord) -> None:
        if self._task is None or self._header is None:
            return
        header = self._header
        done_reps = record.repetition if record.warmup else header.warmup + record.repetition
        if record.index == 0:
            self._first_ms = record.device_ms
        which = (f"warmup {record.repetition + 1}/{header.warmup}" if record.warmup
                 else f"rep {record.repetition + 1}/{header.repetitions}")
        rate = self._last_rate
        if record.index > 0 and record.device_ms > self._first_ms:
            rate = f"{record.index / ((record.device_ms - self._first_ms) / 1e3):,.2f} tok/s (device)"
        self._progress.update(self._task, description=which, rate=rate,
                              completed=done_reps * header.tokens + record.index + 1)

    def close(self) -> None:
        self._progress.stop()


def summary_table(summary: SummaryRecord, header: SessionHeader | None) -> Table:
    """The figures a user reads first, device-timed, with validity up front."""
    title = "summary"
    if header is not None:
        title = f"{header.board}{' (emulated)' if header.emulated else ''} · {header.model} · {header.quantization}"
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [("status", summary.status + ("" if summary.valid else " (not valid)"))]
    emulated = header is not None and header.emulated
    if emulated:
        # what a real chip would do first; the emulator's own timer counts instructions, not cycles
        mhz = f"{header.clock_hz / 1e6:g} MHz" if header is not None else "board clock"
        predicted = summary.predicted_decode_tokens_per_s
        rows += [
            (f"decode tokens/s, predicted at {mhz}", f"{'-' if predicted is None else f'{predicted:,.1f}'} "
             f"(bound {_fmt(summary.ipc1_decode_tokens_per_s, 1)} at 1 instr/cycle)"),
            ("cycle model", summary.cycle_model or summary.prediction_note or "not run (add --predict)"),
        ]
    timer = "decode tokens/s, emulator timer (instruction-timed)" if emulated else "decode tokens/s (median)"
    rows += [
        (timer, _fmt(summary.decode_tokens_per_s)),
        ("decode tokens/s min / max", f"{_fmt(summary.decode_tokens_per_s_min)} / "
         f"{_fmt(summary.decode_tokens_per_s_max)}"),
        ("decode tokens/s stddev", _fmt(summary.decode_tokens_per_s_stddev, 4)),
        ("prefill tokens/s", _fmt(summary.prefill_tokens_per_s)),
        ("time to first token ms", _fmt(summary.ttft_ms, 3)),
        ("token latency ms p50 / p95", f"{_fmt(summary.token_latency_ms_p50, 3)} / "
         f"{_fmt(summary.token_latency_ms_p95, 3)}"),
        ("peak RAM bytes", "-" if summary.peak_ram_bytes is None else
         f"{summary.peak_ram_bytes:,} of {summary.ram_total_bytes or 0:,}"),
        (f"energy mJ/token ({summary.power_source or 'no meter'})", _fmt(summary.energy_mj_per_token, 3)),
        ("power mW avg / peak", f"{_fmt(summary.avg_power_mw, 1)} / {_fmt(summary.peak_power_mw, 1)}"),
        (f"max temperature °C ({summary.temperature_source or 'no sensor'})", _fmt(summary.max_temp_c, 1)),
        ("instructions / decoded token", _fmt(summary.decode_instructions_per_token, 0)),
        *([("predicted cycles / decoded token", _fmt(summary.predicted_cycles_per_token, 0))]
          if summary.predicted_cycles_per_token is not None else []),
        ("repetitions / tokens", f"{summary.repetitions} / {summary.tokens_generated}"),
        ("matches host reference", {True: "yes", False: "NO", None: "-"}[summary.reference_match]),
        ("frames corrupt / lost", f"{summary.frames_corrupt} / {summary.frames_lost}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for reason in summary.reasons[:5]:
        table.add_row("[red]reason[/]", reason)
    for reason in summary.energy_reasons[:3]:
        table.add_row("[yellow]energy[/]", reason)
    return table
