"""What `compare` calls its columns, what it refuses to gate, and what it calls unchanged.

Synthetic sessions check the rules; real emulated runs check the acceptance commands
(a `--kernels portable` run against a default one, an STM32 run against a RISC-V one).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.cli import main
from profiler.compare.load import read_session_file, session_paths
from profiler.compare.reporting.labels import run_name
from profiler.compare.runs import compare_runs
from profiler.compare.synthetic import Synthetic, write_synthetic


def _run_cli(argv: list[str]) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    return code, buffer.getvalue()


def _header_row(markdown: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith("| metric |"))


def test_columns_are_named_by_what_differs_and_the_title_holds_the_rest(tmp_path: Path) -> None:
    def named(seed: int, kernels: str, stamp: str) -> Path:
        return write_synthetic(tmp_path, Synthetic(seed=seed, firmware_id=f"stm32f4-abc+{kernels}"),
                               f"20260101T1010{stamp}Z-stm32f405-demo-{stamp[0] * 12}")

    dsp, portable = named(1, "dsp", "10"), named(2, "portable", "20")
    code, md = _run_cli(["compare", str(dsp), str(portable), "--format", "md"])
    assert code == 0
    head = _header_row(md)
    assert "**dsp (baseline)**" in head and "**portable**" in head and "2026" not in head
    assert md.startswith("### tiny-profiler compare: stm32f405 · demo · int8 · 16 tokens")
    assert "| dsp | `" in md and "`stm32f4-abc+portable`" in md  # the legend keeps the full names
    assert "decode rate (tok/s) ↑" in md and "(tok/s) (tok/s)" not in md  # the unit once
    # Same configuration twice: the files are what tells them apart, default names shortened.
    again = named(3, "dsp", "30")
    labels = [c.label for c in compare_runs([dsp, again]).columns]
    assert labels == ["01-01 10:10:10 111111", "01-01 10:10:30 333333"]
    assert run_name("results/my-run.jsonl") == "my-run"


@pytest.mark.parametrize("other", [{"quantization": "int4", "model": "demo-int4"}, {"board": "riscv32-virt"}])
def test_other_board_model_or_quantization_is_shown_never_gated(tmp_path: Path, other: dict[str, str]) -> None:
    base = write_synthetic(tmp_path, Synthetic(seed=1), "base")
    slower = write_synthetic(tmp_path, Synthetic(seed=2, decode_scale=0.5, **other), "other")  # type: ignore[arg-type]
    code, md = _run_cli(["compare", str(base), str(slower), "--format", "md", "--fail-on-regression"])
    assert code == 0, md
    assert "(not comparable)" in _header_row(md) and "❌" not in md
    assert "not comparable, not gated" in md and "never gated" in md
    doc = json.loads(_run_cli(["compare", str(base), str(slower), "--format", "json"])[1])
    assert {r["comparable"] for r in doc["rows"]} == {True, False} and not doc["gate"]["failed"]
    assert all(r["delta"] is None for r in doc["rows"] if not r["comparable"])


def test_float_noise_is_unchanged(tmp_path: Path) -> None:
    paths = []
    for name, power in (("a", 131.99999999999997), ("b", 132.00000000000003)):
        path = write_synthetic(tmp_path, Synthetic(seed=1), name)  # same seed: same figures otherwise
        lines = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "repetition":
                record["avg_power_mw"] = power
            lines.append(json.dumps(record))
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    comparison = compare_runs(paths)
    power = next(v for v in comparison.verdicts if v.metric.key == "avg_power_mw")
    assert power.unchanged and power.delta == 0.0 and not power.worse and power.reason.startswith("unchanged")
    _, md = _run_cli(["compare", *map(str, paths), "--format", "md"])
    row = next(line for line in md.splitlines() if line.startswith("| average power (mW)"))
    assert "unchanged" in row and "%" not in row


# --- real emulated runs ----------------------------------------------------------------------------------------


def _real_run(out: Path, *extra: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "profiler.cli", "run", "--emulate", "--model", "demo",
                           "--tokens", "12", "--repeat", "5", "--out", str(out), "--json", *extra],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (path,) = session_paths(out)
    return path


@pytest.mark.qemu
def test_real_kernels_and_boards_acceptance(tmp_path: Path, firmware_image: object) -> None:
    default = _real_run(tmp_path / "dsp", "--device", "stm32")
    portable = _real_run(tmp_path / "portable", "--device", "stm32", "--kernels", "portable")
    riscv = _real_run(tmp_path / "riscv", "--device", "riscv")
    code, md = _run_cli(["compare", str(portable), str(default), "--format", "md"])
    head = _header_row(md)
    assert code == 0 and "portable (baseline)" in head and "**dsp**" in head, head
    assert "dsp vs portable: decode rate: +" in md  # dsp is faster
    code, md = _run_cli(["compare", str(default), str(riscv), "--format", "md", "--fail-on-regression"])
    assert code == 0 and "riscv32-virt · rv32 (not comparable)" in _header_row(md), md
    # One percentile definition: what `run` wrote is what `compare` shows.
    summary = read_session_file(default).summary
    assert summary is not None
    comparison = compare_runs([default])
    p95 = comparison.stats.loc[("token_latency_ms_p95", comparison.columns[0].label), "median"]
    assert p95 == summary["token_latency_ms_p95"]
