"""`tiny-profiler report`: PNG plots that open as images and a summary.md that links them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from profiler.cli import main
from profiler.compare import compare_runs
from profiler.compare_load import read_session_file, session_paths
from profiler.compare_synthetic import Synthetic, write_synthetic
from profiler.report import token_latencies


def _images(out: Path) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for png in sorted(out.glob("*.png")):
        image = imread(png)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, png
        assert float(np.std(image)) > 0.01, f"{png} is blank"
        shapes[png.name] = image.shape
    return shapes


def _linked(summary: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", summary.read_text())


def test_report_draws_every_telemetry_kind_present(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_synthetic(tmp_path, Synthetic(seed=1, power=True, temperature=True), "a")
    b = write_synthetic(tmp_path, Synthetic(seed=2, power=True, temperature=True, decode_scale=0.9), "b")
    out = tmp_path / "report"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    assert "5 plots" in capsys.readouterr().out
    shapes = _images(out)
    assert set(shapes) == {"tokens_per_s.png", "token_latency.png", "timeline_memory.png",
                           "timeline_power.png", "timeline_temperature.png"}
    assert sorted(_linked(out / "summary.md")) == sorted(shapes)
    summary = (out / "summary.md").read_text()
    assert "❌ regression" in summary and "| a (baseline) |" in summary and "not drawn" not in summary


def test_report_of_memory_only_runs_says_what_is_absent(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_synthetic(runs, Synthetic(seed=1), "good")
    write_synthetic(runs, Synthetic(seed=2, status="invalid"), "bad")
    out = tmp_path / "report"
    assert main(["report", str(runs), "-o", str(out)]) == 0
    assert set(_images(out)) == {"tokens_per_s.png", "token_latency.png", "timeline_memory.png"}
    summary = (out / "summary.md").read_text()
    assert "No power or temperature samples" in summary
    assert "`bad.jsonl` (invalid): repetition 0: token 3" in summary
    assert "average power (mW) ↓ | _absent_" in summary


def test_token_latencies_are_the_decode_steps_the_summary_used(tmp_path: Path) -> None:
    session = read_session_file(write_synthetic(tmp_path, Synthetic(seed=4), "a"))
    latencies = token_latencies(session)
    assert len(latencies) == 5 * 15  # measured repetitions x (tokens - 1)
    summary = session.summary
    assert summary is not None
    per_rep = np.reshape(latencies, (5, 15))  # one percentile definition: per repetition, then the median
    assert np.median(np.percentile(per_rep, 50, axis=1)) == pytest.approx(summary["token_latency_ms_p50"])
    assert np.median(np.percentile(per_rep, 95, axis=1)) == pytest.approx(summary["token_latency_ms_p95"])


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, firmware_image: object) -> Path:
    """One emulated run of the demo model."""
    out = tmp_path_factory.mktemp("real")
    done = subprocess.run([sys.executable, "-m", "profiler.cli", "run", "--device", "stm32", "--emulate", "--model",
                           "demo", "--tokens", "16", "--repeat", "5", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (path,) = session_paths(out)  # the run may write trace spans beside it
    return path


@pytest.mark.qemu
def test_report_of_a_real_run(real_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", str(real_run), "-o", str(out)]) == 0
    shapes = _images(out)
    assert len(shapes) >= 3 and "timeline_memory.png" in shapes
    assert set(_linked(out / "summary.md")) == set(shapes)
    session = read_session_file(real_run)
    summary = session.summary
    assert summary is not None
    per_rep = np.reshape(token_latencies(session), (5, 15))
    assert np.median(np.percentile(per_rep, 95, axis=1)) == pytest.approx(summary["token_latency_ms_p95"])
    comparison = compare_runs([real_run])
    assert comparison.columns[0].header["emulated"] is True and not comparison.verdicts
