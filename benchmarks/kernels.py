"""Matmul kernel table on the emulated boards (`make bench`): one row per board, kernel set and model.

Prints figures, never pass/fail. Derivation (also in docs/performance.md, "Matmul kernels"):
- instructions per decode step k: QEMU runs with -icount shift=S, so the board's timer
  counts instructions; step k is ticks(token k) - ticks(token k-1) converted with
  instructions = ticks / timer_hz * 1e9 / 2**S. Shown for k = 1, 16, 31 and the mean over
  1..31 (every step of a 32-token run after the first token);
- instructions per weight MAC: that mean over the weight MACs of one forward pass;
- shares: a second run of the same firmware under QEMU's own execution log
  (`-d in_asm,exec,nochain`: every executed translation block and its instructions) counts
  the instructions of every address; DWARF line and inline information (addr2line -i)
  assigns each address to matmul (the kernel files and the call into them), attention
  (RoPE, scores, softmax, weighted sum), or the rest of the forward pass (quantize,
  rmsnorm, SiLU, embedding and residuals) and what lies outside it (sampling, frames).
  Shared leaf routines (tp_exp, libgcc's soft-float, memcpy) count for the code that
  called them. Steps are cut at each entry of tp_forward; the traced total of a step is
  printed next to the tick-derived one as a check of the method.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from elftools.elf.elffile import ELFFile
from rich.console import Console
from rich.table import Table

from profiler.api import RunOptions, open_model, plan_run, resolve_model_path
from profiler.emulator import instructions_from_ticks
from profiler.firmware import FIRMWARE_DIR
from profiler.models.convert import quantize_weights
from profiler.models.format import ModelConfig, TpmModel
from profiler.models.inspect import costs
from profiler.models.random_model import random_float_weights
from profiler.sinks.jsonl import read_jsonl

# (device, kernel set): a new variant of a port is one more line here
BOARDS: tuple[tuple[str, str], ...] = (("stm32", "dsp"), ("stm32", "portable"), ("riscv", "rv32"),
                                       ("riscv", "portable"), ("m7", "dsp"), ("m55", "helium"), ("m55", "dsp"))
# riscv's execution logs are the long ones: its shares are measured on the acceptance model only.
TRACED_MODELS: dict[str, tuple[str, ...]] = {"riscv": ("bench int8",), "m7": ("bench int8",),
                                             # QEMU 7.2 logs Helium as halfwords: benchmarks/helium.py counts m55
                                             "m55": ()}
ADDR2LINE = {"stm32": "arm-none-eabi-addr2line", "riscv": "riscv64-unknown-elf-addr2line",
             "m7": "arm-none-eabi-addr2line", "m55": "arm-none-eabi-addr2line"}
# The acceptance shape: 278,528 weight MACs per token (unshared classifier).
BENCH_SHAPE = ModelConfig(dim=64, hidden_dim=192, n_layers=5, n_heads=8, n_kv_heads=4, vocab_size=512,
                          seq_len=64, group_size=32, shared_classifier=False)
TOKENS = 32
STEPS = (1, 16, 31)
CATEGORIES = ("matmul", "attention", "quantize", "rmsnorm", "silu", "forward other", "outside forward")
HELPERS = ("tp_exp", "tp_sqrtf_soft", "memcpy", "memset", "memmove")


@dataclass
class Row:
    """The figures of one board, kernel set and model."""

    device: str
    kernels: str
    model: str
    firmware_id: str = ""
    weight_macs: int = 0
    steps: list[float] = field(default_factory=list)  # instructions of decode steps 1..31
    shares: dict[str, float] = field(default_factory=dict)  # instructions per step, by category
    helpers: dict[str, float] = field(default_factory=dict)  # of which in leaf routines, by name
    traced_step_mean: float | None = None
    predicted_cycles: float | None = None  # per decode step, from the board's cycle model (profiler/cycles)
    cycle_model: str | None = None
    text_bytes: int = 0
    bss_bytes: int = 0
    peak_ram_bytes: int = 0

    @property
    def mean(self) -> float:
        """Mean instructions per decode step over steps 1..31."""
        return sum(self.steps) / len(self.steps)


def bench_models(directory: Path) -> dict[str, Path]:
    """The acceptance model in int8 and int4 (random weights, the demo's tokenizer) and the demo model."""
    demo = TpmModel.read(resolve_model_path("demo"))
    paths = {}
    for quant in ("int8", "int4"):
        weights = random_float_weights(BENCH_SHAPE, seed=7)
        model = quantize_weights(weights, BENCH_SHAPE.group_size, BENCH_SHAPE.seq_len, demo.tokenizer, quant=quant)
        path = directory / f"bench-{quant}.tpm"
        model.write(path)
        paths[f"bench {quant}"] = path
    paths["demo"] = resolve_model_path("demo")
    return paths


def decode_steps(records: list[dict]) -> list[float]:  # type: ignore[type-arg]
    """Instructions of decode steps 1..n-1 from the token ticks of the first repetition."""
    header = records[0]
    shift = header["emulator"]["icount_shift"]
    tokens = [r for r in records if r["type"] == "token"]
    ticks = [r["ticks"] for r in tokens if r["repetition"] == tokens[0]["repetition"]]
    return [instructions_from_ticks(b - a, header["timer_hz"], shift) for a, b in itertools.pairwise(ticks)]


# ---------------------------------------------------------------------------------------------
# Instruction profile from QEMU's execution log


class Symbols:
    """Function symbols of an ELF, for the address -> function lookups of the log parser."""

    def __init__(self, elf: Path) -> None:
        found: list[tuple[int, str]] = []
        with elf.open("rb") as handle:
            table = ELFFile(handle).get_section_by_name(".symtab")
            for sym in table.iter_symbols():  # type: ignore[union-attr]
                if sym["st_info"]["type"] == "STT_FUNC" and sym["st_size"] > 0:
                    found.append((sym["st_value"] & ~1, sym.name))  # Thumb: bit 0 marks the mode
        found.sort()
        self.starts = [a for a, _ in found]
        self.names = [n for _, n in found]
        self.address = dict((n, a) for a, n in found)

    def name(self, pc: int) -> str:
        i = bisect.bisect_right(self.starts, pc) - 1
        return self.names[i] if i >= 0 else ""

    def is_helper(self, pc: int) -> bool:
        name = self.name(pc)
        return name.startswith("__") or name.split(".")[0] in HELPERS


def _regions(source: Path) -> dict[str, range]:
    """Line ranges of tp_forward's attention block and SiLU loop, found by their text."""
    lines = source.read_text().splitlines()

    def find(text: str) -> int | None:
        return next((i + 1 for i, line in enumerate(lines) if text in line), None)

    regions = {}
    rope, out_proj = find("/* RoPE"), find("/* output projection")
    if rope and out_proj:
        regions["attention"] = range(rope, out_proj)
    w3, q_hidden = find("matmul(c, s->hb2"), find("quantize(&s->xq, s->hb,")
    if w3 and q_hidden:
        regions["silu"] = range(w3 + 1, q_hidden)
    return regions


def classify(elf: Path, addr2line: str, pcs: Iterable[int]) -> dict[int, str]:
    """Category of each address from its inline chain (innermost function first)."""
    wanted = sorted(set(pcs))
    result = subprocess.run([addr2line, "-a", "-f", "-i", "-e", str(elf)],
                            input="\n".join(f"0x{p:x}" for p in wanted), capture_output=True, text=True, check=True)
    regions = _regions(FIRMWARE_DIR / "core" / "transformer.c")
    chains: dict[int, list[tuple[str, str, int]]] = {}
    current: list[tuple[str, str, int]] = []
    lines = result.stdout.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("0x"):
            current = chains.setdefault(int(lines[i], 16), [])
            i += 1
            continue
        where = lines[i + 1] if i + 1 < len(lines) else "??:0"
        file, _, line = where.partition(":")
        number = line.split()[0] if line.split() else "0"
        current.append((lines[i].split(".")[0], Path(file).name, int(number) if number.isdigit() else 0))
        i += 2
    out = {}
    for pc, chain in chains.items():
        names = [c[0] for c in chain]
        files = [c[1] for c in chain]
        if any(n.startswith("tp_matmul") for n in names) or any(f.startswith("matmul") for f in files):
            out[pc] = "matmul"
        elif "tp_softmax" in names:
            out[pc] = "attention"
        elif "rmsnorm" in names or "quantize" in names:
            out[pc] = "rmsnorm" if "rmsnorm" in names else "quantize"
        elif "matmul" in names:
            out[pc] = "matmul"  # the int8/int4 dispatch inlined into tp_forward
        elif names and names[-1] == "tp_forward":
            line = chain[-1][2]
            out[pc] = next((k for k, r in regions.items() if line in r), "forward other")
        else:
            out[pc] = "outside forward"
    return out


@dataclass
class Trace:
    """Executed-instruction counts per forward pass, from QEMU's `-d in_asm,exec,nochain` log."""

    symbols: Symbols
    forward: int
    blocks: dict[int, list[int]] = field(default_factory=dict)  # start pc -> instruction addresses
    # per segment (0: before the first tp_forward, n: forward n-1 to the next): (context pc, block, length) -> count
    segments: list[Counter[tuple[int, int, int]]] = field(default_factory=lambda: [Counter()])

    def feed(self, stream: BinaryIO) -> None:
        pending: list[int] | None = None
        helper_of: dict[int, bool] = {}
        context = 0
        last: tuple[int, int, int] | None = None
        seg = self.segments[0]
        for raw in _lines(stream):
            if raw.startswith(b"Trace "):
                fields = raw[raw.index(b"[") + 1:raw.index(b"]")].split(b"/")
                pc = int(fields[1], 16)
                if pending:
                    if pending[0] == pc and len(pending) > len(self.blocks.get(pc, ())):
                        self.blocks[pc] = pending
                    pending = None
                count = int(fields[3], 16) & 0x1FF  # CF_COUNT_MASK: an icount-limited block
                pcs = self.blocks.get(pc, [pc])
                n = min(count, len(pcs)) if count else len(pcs)
                if pc == self.forward:
                    seg = Counter()
                    self.segments.append(seg)
                helper = helper_of.get(pc)
                if helper is None:
                    helper = helper_of[pc] = self.symbols.is_helper(pc)
                key = (context if helper else 0, pc, n)
                seg[key] += 1
                last = key
                if not helper:
                    context = pcs[n - 1]  # the call site, for leaf routines it calls
            elif raw.startswith(b"IN:"):
                pending = []
            elif pending is not None and raw.startswith(b"0x"):
                pending.append(int(raw[:raw.index(b":")], 16))
            elif raw.startswith(b"cpu_io_recompile: rewound") and last is not None:
                # the block stopped before an I/O access and runs again from there
                stop = int(raw.split()[-1], 16)
                pcs = self.blocks.get(last[1], [])
                if stop in pcs:
                    seg[last] -= 1
                    seg[(last[0], last[1], pcs.index(stop))] += 1

    def step(self, segment: int, categories: dict[int, str], helpers: Counter[str]) -> Counter[str]:
        """Instructions of one segment by category; leaf routines also added up by name into `helpers`."""
        out: Counter[str] = Counter()
        for (context, pc, n), times in self.segments[segment].items():
            pcs = self.blocks.get(pc, [pc])[:n]
            if context:
                out[categories.get(context, "outside forward")] += times * len(pcs)
                helpers[self.symbols.name(pc).split(".")[0]] += times * len(pcs)
            else:
                for p in pcs:
                    out[categories.get(p, "outside forward")] += times
        return out

    def addresses(self) -> set[int]:
        found = {p for pcs in self.blocks.values() for p in pcs}
        found.update(context for seg in self.segments for context, _, _ in seg if context)
        return found


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    rest = b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def traced_run(options: RunOptions, elf: Path) -> tuple[list[dict], Trace]:  # type: ignore[type-arg]
    """One run of `options` (firmware `elf`) under QEMU's execution log: its records and the log's counts."""
    symbols = Symbols(elf)
    trace = Trace(symbols, symbols.address["tp_forward"])
    options.out.mkdir(parents=True, exist_ok=True)
    fifo = options.out / "qemu-exec.log"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with fifo.open("rb") as stream:
                trace.feed(stream)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    os.environ["TINY_PROFILER_QEMU_ARGS"] = f"-d in_asm,exec,nochain -D {fifo}"
    try:
        session, path = plan_run(options)
        session.run()
    finally:
        del os.environ["TINY_PROFILER_QEMU_ARGS"]
        thread.join(timeout=600)
    if errors:
        raise errors[0]
    return read_jsonl(path), trace


def profile(device: str, kernels: str, model: Path, out: Path, n_prompt: int, elf: Path
            ) -> tuple[dict[str, float], dict[str, float], float]:
    """Mean instructions per decode step 1..31 by category, by leaf routine, and the traced mean (the check)."""
    # one repetition, no warmup (every emulated repetition takes the same instructions); one more token bounds step 31
    _, trace = traced_run(RunOptions(device=device, model=str(model), tokens=TOKENS + 1, repeat=1, warmup=0, out=out,
                                     emulate=True, kernels=kernels), elf)
    categories = classify(elf, ADDR2LINE[device], trace.addresses())
    # segment n + 1 is forward n; decode step k is the forward at prompt position n_prompt - 1 + k
    totals: Counter[str] = Counter()
    helpers: Counter[str] = Counter()
    for k in range(1, TOKENS):
        totals.update(trace.step(n_prompt + k, categories, helpers))
    steps = TOKENS - 1
    parts = {c: totals[c] / steps for c in CATEGORIES}
    return parts, {name: n / steps for name, n in helpers.most_common()}, sum(totals.values()) / steps


def measure(device: str, kernels: str, name: str, model: Path, work: Path, shares: bool) -> Row:
    cfg = open_model(model)[0].config
    # One run gives the instructions (first repetition: every emulated repetition takes the same) and the
    # predicted cycles (a valid run: 5 repetitions, the first traced by the cycle model's plugin).
    session, path = plan_run(RunOptions(device=device, model=str(model), tokens=TOKENS, repeat=5, warmup=0,
                                        out=work / f"{device}-{kernels}-{name}".replace(" ", "-"), emulate=True,
                                        kernels=kernels, predict=True))
    predicted = session.run()
    records = read_jsonl(path)
    header, summary = records[0], records[-1]
    row = Row(device, kernels, name, firmware_id=header["firmware_id"])
    row.predicted_cycles, row.cycle_model = predicted.predicted_cycles_per_token, predicted.cycle_model
    row.weight_macs = costs(cfg).weight_macs
    row.steps = decode_steps(records)
    sections = header["firmware_sections"]
    row.text_bytes = sections.get(".text", 0)
    row.bss_bytes = sections.get(".bss", 0)
    row.peak_ram_bytes = summary["peak_ram_bytes"]
    if shares:
        from profiler.firmware import cache_dir

        elf = cache_dir() / header["firmware_id"] / "firmware.elf"
        trace_dir = work / f"trace-{device}-{kernels}-{name}".replace(" ", "-")
        trace_dir.mkdir(parents=True)
        n_prompt = len(header["prompt_tokens"])
        row.shares, row.helpers, row.traced_step_mean = profile(device, kernels, model, trace_dir, n_prompt, elf)
    return row


def print_table(rows: list[Row], console: Console) -> None:
    table = Table(title=f"matmul kernels on the emulated boards · decode steps 1..{TOKENS - 1} of {TOKENS} tokens")
    for column in ("board", "kernels", "model", *(f"instr step {k}" for k in STEPS), "instr/step mean",
                   "weight MACs", "instr/MAC", "predicted cycles/MAC", "matmul instr/MAC", "matmul", "attention",
                   "rest"):
        table.add_column(column, justify="left" if column in ("board", "kernels", "model") else "right")
    for row in rows:
        total = sum(row.shares.values())

        def pct(*cats: str, total: float = total, row: Row = row) -> str:
            return f"{100 * sum(row.shares[c] for c in cats) / total:.1f}%" if total else "-"

        rest = [c for c in CATEGORIES if c not in ("matmul", "attention")]
        matmul_per_mac = row.shares["matmul"] / row.weight_macs if total else float("nan")
        table.add_row(row.device, row.kernels, row.model, *(f"{row.steps[k - 1]:,.0f}" for k in STEPS),
                      f"{row.mean:,.0f}", f"{row.weight_macs:,}", f"{row.mean / row.weight_macs:.3f}",
                      "-" if row.predicted_cycles is None else f"{row.predicted_cycles / row.weight_macs:.3f}",
                      f"{matmul_per_mac:.3f}", pct("matmul"), pct("attention"), pct(*rest))
    console.print(table)
    for model_name in sorted({r.cycle_model for r in rows if r.cycle_model}):
        console.print(f"predicted cycles: {model_name} (docs/performance.md, \"Cycle models\")")
    detail = Table(title="instructions per decode step by part (mean of steps 1..31, from the execution log)")
    for column in ("board", "kernels", "model", *CATEGORIES, "traced total", "tick total", "flash .text", ".bss",
                   "peak RAM"):
        detail.add_column(column, justify="left" if column in ("board", "kernels", "model") else "right")
    for row in rows:
        # "-": not traced (QEMU's log splits Helium instructions; other rows are traced once per board), never 0
        shares = [f"{row.shares.get(c, 0):,.0f}" if row.traced_step_mean else "-" for c in CATEGORIES]
        detail.add_row(row.device, row.kernels, row.model, *shares,
                       f"{row.traced_step_mean:,.0f}" if row.traced_step_mean else "-", f"{row.mean:,.0f}",
                       f"{row.text_bytes:,}", f"{row.bss_bytes:,}", f"{row.peak_ram_bytes:,}")
    console.print(detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-shares", action="store_true", help="skip the execution-log runs (the slow part)")
    parser.add_argument("--board", action="append", help="device:kernels, e.g. stm32:dsp (default: all)")
    parser.add_argument("--model", action="append", help="bench int8, bench int4 or demo (default: all)")
    args = parser.parse_args(argv)
    boards = [tuple(b.split(":")) for b in args.board] if args.board else list(BOARDS)
    # A log or CI job is no terminal: give the wide tables room instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=220)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = bench_models(work)
        for device, kernels in boards:
            for name, path in models.items():
                if args.model and name not in args.model:
                    continue
                traced = name in TRACED_MODELS.get(device, (name,))
                rows.append(measure(device, kernels, name, path, work, traced and not args.no_shares))
    print_table(rows, console)
    for row in rows:
        print(json.dumps({"board": row.device, "kernels": row.kernels, "model": row.model,
                          "firmware_id": row.firmware_id,
                          "instructions_per_step": {k: row.steps[k - 1] for k in STEPS},
                          "instructions_per_step_mean": row.mean,
                          "weight_macs": row.weight_macs, "instructions_per_weight_mac": row.mean / row.weight_macs,
                          "predicted_cycles_per_step": row.predicted_cycles, "cycle_model": row.cycle_model,
                          "predicted_cycles_per_weight_mac":
                              row.predicted_cycles / row.weight_macs if row.predicted_cycles else None,
                          "parts_per_step": row.shares, "leaf_routines_per_step": row.helpers,
                          "flash_text_bytes": row.text_bytes, "bss_bytes": row.bss_bytes,
                          "peak_ram_bytes": row.peak_ram_bytes, "traced_step_mean": row.traced_step_mean}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
