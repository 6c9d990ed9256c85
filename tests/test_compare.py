"""`tiny-profiler compare`: the statistics on known distributions, the gate, the robustness rules.

Statistics are checked on synthetic session files (profiler.compare.synthetic) drawn from known
distributions; the acceptance commands also run on files written by real emulated runs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from profiler.cli import main
from profiler.compare.load import session_paths
from profiler.compare.runs import compare_runs, parse_threshold
from profiler.compare.stats import bootstrap_ci, mann_whitney_u, midranks
from profiler.compare.synthetic import Synthetic, write_synthetic
from profiler.errors import ConfigError


def _write(tmp: Path, name: str, **spec: object) -> Path:
    return write_synthetic(tmp, Synthetic(**spec), name)  # type: ignore[arg-type]


def _stdout(argv: list[str]) -> str:
    """Run the CLI in-process (exit 0 expected) and return its stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    return buffer.getvalue()


def _brute_force_p(x: list[float], y: list[float]) -> float:
    # U by pairwise counting over every relabelling: independent of the rank-sum code.
    pooled, n1 = x + y, len(x)

    def u(a: list[float], b: list[float]) -> float:
        return sum((i > j) + 0.5 * (i == j) for i in a for j in b)

    center = len(x) * len(y) / 2
    observed = abs(u(x, y) - center)
    hits = total = 0
    for pick in combinations(range(len(pooled)), n1):
        a = [pooled[i] for i in pick]
        b = [pooled[i] for i in range(len(pooled)) if i not in pick]
        hits += abs(u(a, b) - center) >= observed - 1e-9
        total += 1
    return hits / total


# --- statistics ------------------------------------------------------------------------------------------------


def test_midranks_share_tied_ranks() -> None:
    assert midranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_mann_whitney_exact_values() -> None:
    assert mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p_value == pytest.approx(2 / 252)
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]).p_value == pytest.approx(0.1)
    assert mann_whitney_u([5.0] * 5, [5.0] * 5).p_value == 1.0  # identical deterministic runs
    constant = mann_whitney_u([5.0] * 5, [6.0] * 5)  # two deterministic configurations: fully separated
    assert constant.method == "exact" and constant.p_value == pytest.approx(2 / 252)


def test_mann_whitney_exact_with_ties_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.integers(0, 4, 5).astype(float).tolist()
        y = rng.integers(1, 5, 4).astype(float).tolist()
        assert mann_whitney_u(x, y).p_value == pytest.approx(_brute_force_p(x, y))


def test_mann_whitney_normal_approximation_is_close_to_exact() -> None:
    rng = np.random.default_rng(11)
    for shift in (0.0, 0.5, 1.0):
        x, y = rng.normal(0, 1, 8), rng.normal(shift, 1, 8)
        exact = mann_whitney_u(x, y)
        normal = mann_whitney_u(x, y, exact_limit=0)
        assert exact.method == "exact" and normal.method == "normal"
        assert normal.p_value == pytest.approx(exact.p_value, abs=0.03)


def test_mann_whitney_is_calibrated_under_the_null() -> None:
    rng = np.random.default_rng(5)
    rejections = sum(mann_whitney_u(rng.normal(60, 2, 5), rng.normal(60, 2, 5)).p_value < 0.05 for _ in range(400))
    assert rejections / 400 <= 0.06  # exact level for 5 vs 5 is 0.032


def test_bootstrap_interval_holds_the_median_and_is_reproducible() -> None:
    values = [59.0, 60.5, 61.0, 58.2, 60.1]
    low, high = bootstrap_ci(values)
    assert low <= float(np.median(values)) <= high and low >= min(values) and high <= max(values)
    assert bootstrap_ci(values) == (low, high)
    assert bootstrap_ci([64.9] * 5) == (64.9, 64.9)


def test_threshold_parsing() -> None:
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("2.5") == pytest.approx(0.025)
    with pytest.raises(ConfigError):
        parse_threshold("five")


# --- the gate on known distributions ---------------------------------------------------------------------------


def test_ten_percent_slowdown_fails_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path, "a", seed=1)
    b = _write(tmp_path, "b", seed=2, decode_scale=0.9)
    assert main(["compare", str(a), str(b), "--fail-on-regression", "--threshold", "5%"]) == 1
    out = capsys.readouterr().out
    assert "regression" in out and "decode rate (tok/s)" in out
    assert main(["compare", str(a), str(b), "--threshold", "5%"]) == 0  # without the flag: a report only


def test_slowdown_detected_and_noise_not_flagged_over_seeded_trials(tmp_path: Path) -> None:
    false_alarms, detected = 0, 0
    for trial in range(100):
        a = _write(tmp_path, f"a{trial}", seed=10_000 + 3 * trial)
        same = _write(tmp_path, f"s{trial}", seed=10_001 + 3 * trial)
        false_alarms += compare_runs([a, same]).gate_failed
        if trial < 25:
            slow = _write(tmp_path, f"d{trial}", seed=10_002 + 3 * trial, decode_scale=0.9)
            verdicts = compare_runs([a, slow]).regressions
            detected += any(v.metric.key == "decode_tokens_per_s" for v in verdicts)
    assert false_alarms <= 5, f"{false_alarms} of 100 same-distribution pairs failed the gate"
    assert detected >= 23, f"10% slowdown flagged in {detected} of 25 trials"


def test_slowdown_inside_the_threshold_is_not_a_regression(tmp_path: Path) -> None:
    a = _write(tmp_path, "a", seed=1, cv=0.005)
    b = _write(tmp_path, "b", seed=2, cv=0.005, decode_scale=0.97)
    verdict = next(v for v in compare_runs([a, b]).verdicts if v.metric.key == "decode_tokens_per_s")
    assert verdict.significant and verdict.worse and not verdict.regression
    assert "within 5%" in verdict.reason


def test_memory_growth_is_a_regression_lower_is_better(tmp_path: Path) -> None:
    a = _write(tmp_path, "a", seed=1)
    b = _write(tmp_path, "b", seed=1, extra_memory=10_000)  # +10.9% peak RAM, same timings
    verdicts = {v.metric.key: v for v in compare_runs([a, b]).verdicts}
    assert verdicts["peak_ram_bytes"].regression and verdicts["peak_ram_bytes"].delta > 0.05
    assert not verdicts["decode_tokens_per_s"].regression and verdicts["decode_tokens_per_s"].delta == 0


# --- robustness ------------------------------------------------------------------------------------------------


def test_invalid_failed_and_interrupted_runs_are_listed_not_counted(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    _write(runs, "good", seed=1)
    for status in ("invalid", "failed", "interrupted"):
        _write(runs, status, seed=2, status=status)
    spans = runs / "good.trace.jsonl"  # other JSONL beside the sessions (trace spans) is not a session
    spans.write_text('{"name": "flash", "context": {}}\n')
    comparison = compare_runs([runs])
    assert len(comparison.columns) == 1 and len(comparison.columns[0].sessions) == 1
    assert sorted(e.status for e in comparison.excluded) == ["failed", "interrupted", "invalid"]
    assert main(["compare", str(runs), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "token 3 is 7 on the board" in out and "interrupted by the user" in out and "board stopped" in out
    assert main(["compare", str(spans)]) == 3  # named explicitly, it is refused with a reason
    assert "not a session header" in capsys.readouterr().err


def test_run_without_a_valid_session_fails_the_gate(tmp_path: Path) -> None:
    a = _write(tmp_path, "a", seed=1)
    bad = _write(tmp_path, "bad", seed=2, status="failed")
    assert main(["compare", str(a), str(bad), "--fail-on-regression"]) == 1
    with pytest.raises(ConfigError, match=r"baseline .* has no valid session"):
        compare_runs([a], baseline=bad)


def test_truncated_file_is_read_up_to_the_last_good_record(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "cut", seed=1)
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the summary line loses its end
    assert main(["compare", str(path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "is cut short" in captured.err and "no summary record" in captured.err
    rows = {r["metric"]: r for r in json.loads(captured.out)["rows"]}
    assert rows["decode_tokens_per_s"]["n"] == 5
    lines = text.splitlines()
    early = tmp_path / "early.jsonl"  # cut in the middle of the third repetition
    cut_at = [i for i, line in enumerate(lines) if '"type": "repetition"' in line][3]
    early.write_text("\n".join(lines[:cut_at]) + "\n" + lines[cut_at][:30])
    comparison = compare_runs([path, early])
    assert [e.status for e in comparison.excluded] == ["truncated"]
    assert "file cut short after 2 valid repetitions" in comparison.excluded[0].reasons[0]


def test_unknown_schema_version_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "future", seed=1)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["schema_version"] = 2
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert main(["compare", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "schema_version 2" in err and "reads 1" in err


def test_different_models_are_grouped_never_pooled(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _write(runs, "demo-1", seed=1)
    _write(runs, "other-1", seed=2, model="other", decode_tps=30.0)
    _write(runs, "demo-2", seed=3)
    _write(runs, "other-2", seed=4, model="other", decode_tps=30.0, firmware_id="stm32f4-newer")
    comparison = compare_runs([runs])
    labels = [c.label for c in comparison.columns]
    assert [c.group[1] for c in comparison.columns] == ["demo", "other", "other"]
    demo, other_old, other_new = comparison.columns
    assert len(demo.sessions) == 2 and demo.baseline and other_old.baseline and not other_new.baseline
    stats = comparison.stats.loc["decode_tokens_per_s"]
    assert stats.loc[demo.label, "n"] == 10 and stats.loc[other_old.label, "n"] == 5
    assert 25 < stats.loc[other_old.label, "median"] < 35 and 55 < stats.loc[demo.label, "median"] < 65
    assert {v.baseline for v in comparison.verdicts} == {other_old.label}, labels


def test_energy_power_and_temperature_present_or_absent(tmp_path: Path) -> None:
    plain = _write(tmp_path, "plain", seed=1)
    metered = _write(tmp_path, "metered", seed=2, power=True, temperature=True)
    lines = metered.read_text().splitlines()
    summary = json.loads(lines[-1])
    summary["energy_mj_per_token"] = 2.5  # a field a later schema adds to the summary
    metered.write_text("\n".join([*lines[:-1], json.dumps(summary)]) + "\n")
    rows = {(r["run"], r["metric"]): r for r in
            json.loads(_stdout(["compare", str(plain), str(metered), "--format", "json"]))["rows"]}
    assert rows[("plain", "avg_power_mw")]["median"] is None and rows[("plain", "avg_power_mw")]["n"] == 0
    assert rows[("metered", "avg_power_mw")]["n"] == 5 and 110 < rows[("metered", "avg_power_mw")]["median"] < 130
    assert rows[("metered", "max_temp_c")]["median"] >= 41
    assert rows[("metered", "energy_mj_per_token")]["source"] == "summary"
    assert rows[("metered", "energy_mj_per_token")]["median"] == 2.5
    assert "absent in plain" in rows[("metered", "energy_mj_per_token")]["reason"]


def test_formats_csv_json_md_and_plot(tmp_path: Path) -> None:
    a = _write(tmp_path, "a", seed=1)
    b = _write(tmp_path, "b", seed=2, decode_scale=0.9)
    rows = list(csv.DictReader(io.StringIO(_stdout(["compare", str(a), str(b), "--format", "csv"]))))
    decode = next(r for r in rows if r["run"] == "b" and r["metric"] == "decode_tokens_per_s")
    assert decode["better"] == "higher" and decode["regression"] == "True" and float(decode["delta"]) < -0.05
    assert float(decode["ci_low"]) <= float(decode["median"]) <= float(decode["ci_high"])
    assert next(r for r in rows if r["metric"] == "energy_mj_per_token")["median"] == ""  # absent, not 0
    doc = json.loads(_stdout(["compare", str(a), str(b), "--format", "json"]))
    assert doc["gate"]["failed"] is True and doc["threshold"] == pytest.approx(0.05)
    assert all(r["p_value"] is None or 0 <= r["p_value"] <= 1 for r in doc["rows"])
    md = _stdout(["compare", str(a), str(b), "--format", "md", "--plot", str(tmp_path / "r.png")])
    assert md.splitlines()[4].startswith("| metric |") and "CI [" in md and "❌ regression" in md
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", str(a), "--format", "yaml"]) == 3


# --- files written by real emulated runs -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory, firmware_image: object) -> tuple[Path, Path]:
    """Two emulated runs of one configuration (deterministic under -icount: equal figures)."""
    paths = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp(f"real-{name}")
        done = subprocess.run([sys.executable, "-m", "profiler.cli", "run", "--device", "stm32", "--emulate",
                               "--model", "demo", "--tokens", "16", "--repeat", "5", "--out", str(out), "--json"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        (path,) = session_paths(out)  # the run may write trace spans beside it
        paths.append(path)
    return paths[0], paths[1]


@pytest.mark.qemu
def test_real_runs_markdown_table_and_gate_passes(real_runs: tuple[Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a, b = real_runs
    assert main(["compare", str(a), str(b), "--format", "md", "--fail-on-regression", "--threshold", "5%"]) == 0
    out = capsys.readouterr().out
    assert "| metric |" in out and "CI [" in out and "unchanged" in out and "+0.0%" not in out
    assert "gate: 0 regressions" in out and "instructions per decoded token" in out
    comparison = compare_runs([a, b])
    decode = comparison.stats.loc[("decode_tokens_per_s", comparison.columns[0].label)]
    assert decode["n"] == 5 and decode["stddev"] == 0 and decode["ci_low"] == decode["ci_high"] > 0
    assert not comparison.regressions and all(v.p_value == 1.0 and v.unchanged for v in comparison.verdicts)
    assert all(math.isfinite(v.delta or 0) for v in comparison.verdicts)


@pytest.mark.qemu
def test_real_run_cut_in_its_summary_still_compares(real_runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = real_runs
    cut = tmp_path / a.name
    text = a.read_text()
    cut.write_text(text[: len(text) - 100])
    comparison = compare_runs([a, cut])
    assert any("is cut short" in w for w in comparison.warnings)
    assert not comparison.excluded and not comparison.gate_failed
