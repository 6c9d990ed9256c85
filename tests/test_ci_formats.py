"""CI outputs through the real CLI on the emulated board: `--junit` read back with junitparser,
`run --json` identity, `--format json|csv|md`, and a bench plan whose matrix has a kernels axis."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase

from profiler.api import resolve_model_path
from profiler.bench.plan import load_plan
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.qemu


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, check=False)


def _cases(path: Path) -> list[TestCase]:
    return [case for suite in JUnitXml.fromfile(str(path)) for case in suite]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _cli("run", "--device", "stm32", "--model", "demo", "--tokens", "8", "--warmup", "0",
                "--log-file", str(tmp_path / "log.jsonl"), *args)


def test_run_junit_identity_and_formats_then_compare_junit(tmp_path: Path, firmware_image: Any) -> None:
    valid_xml = tmp_path / "ci" / "run.xml"
    result = _run(tmp_path, "--out", str(tmp_path / "a"), "--json", "--junit", str(valid_xml))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    demo = resolve_model_path("demo")
    assert summary["board"] == "stm32f405" and summary["family"] == "stm32" and summary["emulated"] is True
    assert summary["model"] == "demo" and summary["model_sha256"] == hashlib.sha256(demo.read_bytes()).hexdigest()
    assert summary["quantization"] == "int8" and summary["tokens"] == 8 and summary["prompt_tokens"] >= 2
    assert summary["firmware_id"] == firmware_image.firmware_id and summary["kernels"] == "dsp"
    records = read_jsonl(Path(summary["results"]))
    assert records[0]["firmware_id"] == summary["firmware_id"] and len(records[0]["prompt_tokens"]) == \
        summary["prompt_tokens"]
    # Whatever `run --out results/...` writes, git ignores (checked by path, the repository is not touched).
    written = [f"results/nightly/{p.relative_to(tmp_path / 'a')}" for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert len(written) >= 2  # the session JSONL and its trace
    for relative in [*written, "logs/profiler.jsonl", "results/bench-20260101T000000Z/summary.md"]:
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", relative], check=False)
        assert ignored.returncode == 0, f"{relative} is not git-ignored"
    [case] = _cases(valid_xml)
    assert case.is_passed and case.name == "stm32f405 · demo · int8" and case.time > 0
    assert json.loads(case.system_out or "")["decode_tokens_per_s"] == summary["decode_tokens_per_s"]

    # One repetition breaks the "at least 5" rule: exit 1, a failed testcase carrying the summary's reasons.
    invalid_xml = tmp_path / "invalid.xml"
    bad = _run(tmp_path, "--out", str(tmp_path / "b"), "--repeat", "1", "--format", "csv", "--junit",
               str(invalid_xml))
    assert bad.returncode == 1, bad.stderr
    [row] = list(csv.DictReader(io.StringIO(bad.stdout)))
    assert row["valid"] == "False" and row["board"] == "stm32f405" and row["reasons"]
    [case] = _cases(invalid_xml)
    [failure] = case.result
    assert isinstance(failure, Failure) and failure.type == "invalid" and failure.message == row["reasons"]

    # A session that stops early is still one testcase: an error carrying the session's own reason.
    stopped_xml = tmp_path / "stopped.xml"
    stopped = _cli("run", "--device", "stm32", "--port", "socket://127.0.0.1:1", "--no-flash", "--model", "demo",
                   "--out", str(tmp_path / "stopped"), "--log-file", str(tmp_path / "log.jsonl"),
                   "--junit", str(stopped_xml))
    assert stopped.returncode == 8, stopped.stderr
    [case] = _cases(stopped_xml)
    [error] = case.result
    assert isinstance(error, Error) and "cannot open socket://127.0.0.1:1" in (error.message or "")

    # md: a header, a rule and one row with the same figures; json: a list of one row.
    for fmt, check in (("md", lambda out: out.splitlines()[0].startswith("| board | family |")
                        and len(out.splitlines()) == 3),
                       ("json", lambda out: json.loads(out)[0]["kernels"] == "dsp")):
        formatted = _run(tmp_path, "--out", str(tmp_path / fmt), "--format", fmt)
        assert formatted.returncode == 0 and check(formatted.stdout), formatted.stdout + formatted.stderr
        # The console went to stderr: one overall bar with an ETA, not a line per repetition.
        bars = [line for line in formatted.stderr.splitlines() if "━" in line and "%" in line]
        assert len(bars) == 1 and "rep 5/5" in bars[0] and "100%" in bars[0] and "eta" in bars[0], bars

    # compare: a testcase per gated metric; a baseline 10 % faster makes decode tok/s a failed testcase.
    baseline = tmp_path / "baseline.jsonl"
    faster = read_jsonl(Path(summary["results"]))
    for record in faster:
        if record["type"] in ("repetition", "summary") and record.get("decode_tokens_per_s") is not None:
            record["decode_tokens_per_s"] *= 1.10
    baseline.write_text("".join(json.dumps(r) + "\n" for r in faster))
    compare_xml = tmp_path / "compare.xml"
    compared = _cli("compare", str(baseline), summary["results"], "--junit", str(compare_xml), "--format", "json")
    assert compared.returncode == 0, compared.stderr
    cases = _cases(compare_xml)
    assert len(cases) >= 3 and len({c.name for c in cases}) == len(cases)
    failed = [c for c in cases if not c.is_passed]
    assert [c.name.split(" · ")[0] for c in failed] == ["decode_tokens_per_s"]
    assert isinstance(failed[0].result[0], Failure) and "%" in (failed[0].result[0].message or "")


KERNELS_PLAN = """
[defaults]
tokens = 8
repeat = 5
warmup = 0

[matrix]
models = ["demo"]
kernels = ["dsp", "portable"]

[[boards]]
name = "stm32-emu"
device = "stm32"
emulate = true
"""


def test_plan_with_a_kernels_axis_runs_both_and_writes_junit_and_csv(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(KERNELS_PLAN + '\n[[boards]]\nname = "seeded"\ndevice = "stm32"\nemulate = true\n'
                    'tokens = 4\ntemperature = 0.8\nseed = [1, 2]\ncheck_quality = true\n')
    specs = load_plan(plan).sessions
    assert [(s.kernels, s.seed) for s in specs["stm32-emu"]] == [("dsp", 0), ("portable", 0)]
    # A board's own axis multiplies the plan's: 2 kernel sets x 2 seeds.
    assert [(s.kernels, s.seed, s.temperature, s.check_quality, s.tokens) for s in specs["seeded"]] == [
        ("dsp", 1, 0.8, True, 4), ("dsp", 2, 0.8, True, 4), ("portable", 1, 0.8, True, 4),
        ("portable", 2, 0.8, True, 4)]

    run_dir = tmp_path / "run"
    xml = tmp_path / "bench.xml"
    result = _cli("bench", str(plan), "--only", "stm32-emu", "--out", str(run_dir), "--junit", str(xml),
                  "--format", "csv", "--jobs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    bars = [line for line in result.stderr.splitlines() if "sessions" in line and "%" in line]
    assert bars and "2/2 sessions" in bars[-1] and "100%" in bars[-1] and "eta" in bars[-1], result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["kernels"] for r in rows] == ["dsp", "portable"] and all(r["status"] == "ok" for r in rows)
    firmware = {read_jsonl(run_dir / r["jsonl"])[0]["firmware_id"].rsplit("+", 1)[1] for r in rows}
    assert firmware == {"dsp", "portable"}  # each session ran the kernel set it asked for
    cases = _cases(xml)
    assert [c.name for c in cases] == ["stm32-emu · demo int8, 8 tokens, kernels dsp",
                                       "stm32-emu · demo int8, 8 tokens, kernels portable"]
    assert all(c.is_passed and not any(isinstance(r, (Error, Skipped)) for r in c.result) for c in cases)
