"""`tiny-profiler report`: figures that open as images, a self-contained report.html, trace-event JSON.

Synthetic sessions check the file set and the absent cases; a real emulated run checks what the
figures show (per-position growth, per-token energy, a point under the board's ceilings), the
trace-event document, and report.html in headless Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from profiler.cli import main
from profiler.compare.load import read_session_file, session_paths
from profiler.compare.report import token_latencies
from profiler.compare.reporting.roofline import roofline_points
from profiler.compare.reporting.series import energy_series, fitted_slope, steps_by_position
from profiler.compare.runs import compare_runs
from profiler.compare.synthetic import Synthetic, write_synthetic

FIGURES = {"latency_by_position.png", "energy_per_token.png", "roofline.png", "tokens_per_s.png"}


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


def _embedded(html: Path) -> list[str]:
    """Every image source of report.html; all must be data URIs (nothing beside the file is needed)."""
    return re.findall(r'<img src="([^"]{0,30})', html.read_text())


def test_report_writes_every_figure_and_a_self_contained_html(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    a = write_synthetic(tmp_path, Synthetic(seed=1, power=True, temperature=True), "a")
    b = write_synthetic(tmp_path, Synthetic(seed=2, power=True, temperature=True, decode_scale=0.9), "b")
    out = tmp_path / "report"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    assert "7 figures" in capsys.readouterr().out
    shapes = _images(out)
    assert set(shapes) == FIGURES | {"timeline_memory.png", "timeline_power.png", "timeline_temperature.png"}
    assert sorted(_linked(out / "summary.md")) == sorted(shapes)
    summary = (out / "summary.md").read_text()
    assert "❌ regression" in summary and "**a (baseline)**" in summary
    assert "No cpu samples in these runs" in summary  # synthetic runs have no CPU frames
    html = (out / "report.html").read_text()
    assert len(_embedded(out / "report.html")) == len(shapes)
    assert all(src.startswith("data:image/png;base64,") for src in _embedded(out / "report.html"))
    assert "<h2>Validity</h2>" in html and "<h2>Environment</h2>" in html and "stm32f4-synthetic" in html
    assert "xxxxxxxxxxxxxxxx" in html  # the generated text
    assert "no per-token energy" not in summary  # the PNG says it; the markdown links it


def test_report_of_memory_only_runs_says_what_is_absent(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_synthetic(runs, Synthetic(seed=1), "good")
    write_synthetic(runs, Synthetic(seed=2, status="invalid"), "bad")
    out = tmp_path / "report"
    assert main(["report", str(runs), "-o", str(out)]) == 0
    assert set(_images(out)) == FIGURES | {"timeline_memory.png"}
    summary = (out / "summary.md").read_text()
    assert "No cpu or power or temperature samples" in summary
    assert "`bad.jsonl` (invalid): repetition 0: token 3" in summary
    assert "average power (mW) ↓ | _absent_" in summary
    assert "(left out)" in (out / "report.html").read_text()
    assert main(["report", str(runs)]) == 3  # neither -o nor --trace-events


def test_token_latencies_are_the_decode_steps_the_summary_used(tmp_path: Path) -> None:
    session = read_session_file(write_synthetic(tmp_path, Synthetic(seed=4), "a"))
    latencies = token_latencies(session)
    assert len(latencies) == 5 * 15  # measured repetitions x (tokens - 1)
    summary = session.summary
    assert summary is not None
    per_rep = np.reshape(latencies, (5, 15))  # one percentile definition: per repetition, then the median
    assert np.median(np.percentile(per_rep, 50, axis=1)) == pytest.approx(summary["token_latency_ms_p50"])
    assert np.median(np.percentile(per_rep, 95, axis=1)) == pytest.approx(summary["token_latency_ms_p95"])
    steps = steps_by_position(session)
    assert [s.positions[0] for s in steps] == [8] * 5 and steps[0].positions[-1] == 22  # prompt 8, 16 tokens


def _check_trace(doc: dict[str, object]) -> dict[tuple[int, int], list[dict[str, object]]]:
    """The trace-event format's documented fields, and slices on one thread that nest or follow each other."""
    assert doc["displayTimeUnit"] in ("ms", "ns")
    events = doc["traceEvents"]
    assert isinstance(events, list) and events
    names: dict[tuple[int, int | None], str] = {}
    slices: dict[tuple[int, int], list[dict[str, object]]] = defaultdict(list)
    for event in events:
        assert {"name", "ph", "pid"} <= set(event), event
        assert isinstance(event["pid"], int) and event["ph"] in ("X", "C", "M"), event
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name") and isinstance(event["args"]["name"], str)
            names[(event["pid"], event.get("tid"))] = event["args"]["name"]
            continue
        assert isinstance(event["ts"], (int, float)) and event["ts"] >= 0, event
        if event["ph"] == "X":
            assert isinstance(event["tid"], int) and event["dur"] >= 0 and isinstance(event["args"], dict)
            slices[(event["pid"], event["tid"])].append(event)
        else:  # counters: one numeric value per series
            assert event["args"] and all(isinstance(v, (int, float)) for v in event["args"].values()), event
    for (pid, tid), track in slices.items():
        assert (pid, None) in names and (pid, tid) in names, (pid, tid)
        ordered = sorted(track, key=lambda e: (e["ts"], -e["dur"]))
        stack: list[float] = []
        for event in ordered:
            while stack and stack[-1] <= event["ts"] + 1e-3:
                stack.pop()
            end = event["ts"] + event["dur"]
            where = names[(pid, tid)]
            assert not stack or end <= stack[-1] + 1e-3, f"{event['name']} overlaps its neighbour on {where}"
            stack.append(end)
    return slices


def test_trace_events_of_synthetic_runs(tmp_path: Path) -> None:
    a = write_synthetic(tmp_path, Synthetic(seed=1, power=True), "a")
    b = write_synthetic(tmp_path, Synthetic(seed=2, temperature=True), "b")
    path = tmp_path / "trace.json"
    assert main(["report", str(a), str(b), "--trace-events", str(path)]) == 0
    doc = json.loads(path.read_text())
    slices = _check_trace(doc)
    assert len(slices[(1, 2)]) == 6 * 16 and len(slices[(3, 2)]) == 6 * 16  # tokens, warmup included
    counters = {e["name"] for e in doc["traceEvents"] if e["ph"] == "C"}
    assert counters == {"power (mW)", "memory (KB)", "temperature (°C)"}


# --- a real emulated run -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, firmware_image: object) -> Path:
    """One emulated run of the demo model (its power and temperature from the board model)."""
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
    trace = tmp_path / "trace.json"
    assert main(["report", str(real_run), "-o", str(out), "--trace-events", str(trace)]) == 0
    shapes = _images(out)
    assert FIGURES | {"timeline_cpu.png", "timeline_memory.png", "timeline_power.png"} <= set(shapes)
    session = read_session_file(real_run)
    # Latency grows with the context: attention, about 4,100 instructions per position on the STM32.
    slope = fitted_slope(session, steps_by_position(session))
    assert slope is not None and slope.instructions_per_position is not None
    assert 3_000 < slope.instructions_per_position < 5_500
    # Every token carries its energy; the decode tokens' mean is the repetition's energy per token.
    series = energy_series(session)
    assert series is not None and all(mj is not None and mj > 0 for mj in series.energy_mj)
    record = next(r for r in session.measured_repetitions() if r["repetition"] == series.repetition)
    assert np.mean(series.energy_mj[1:]) == pytest.approx(record["energy_mj_per_token"])
    assert series.energy_mj[0] == pytest.approx(record["prefill_energy_mj"])
    assert session.header["model_config"]["dim"] == 64  # the roofline needs no model file
    (point,), missing = roofline_points(compare_runs([real_run]))
    assert not missing and 0 < point.decode_tokens_per_s < point.ceiling_tokens_per_s
    doc = json.loads(trace.read_text())
    slices = _check_trace(doc)
    assert [e["name"] for e in slices[(1, 1)][:2]] == ["prefill 0", "decode 0"]
    assert len(slices[(1, 2)]) == 6 * 16 and all(e["args"]["energy_mj"] for e in slices[(1, 2)])
    assert {"power (mW)", "temperature (°C)", "memory (KB)"} <= {e["name"] for e in doc["traceEvents"]
                                                                 if e["ph"] == "C"}


@pytest.mark.qemu
def test_report_html_in_headless_chromium(real_run: Path, tmp_path: Path) -> None:
    """Debian's chromium opens report.html from disk, every image decodes, and a screenshot is taken."""
    chromium = shutil.which("chromium")
    assert chromium is not None, "chromium is missing: `make setup` installs Debian's chromium package"
    out = tmp_path / "report"
    assert main(["report", str(real_run), "-o", str(out)]) == 0
    figures = len(list(out.glob("*.png")))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--virtual-time-budget=10000"]
    url = (out / "report.html").as_uri()
    dom = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'data-images="{figures}/{figures}"' in dom.stdout, dom.stdout[:300]
    shot = tmp_path / "report.png"
    done = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / 'profile-shot'}",
                           "--window-size=1200,2400", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = imread(shot)
    assert image.shape[:2] == (2400, 1200) and float(np.std(image)) > 0.05


def test_kernel_shares_are_drawn_where_the_session_has_them(tmp_path: Path) -> None:
    split = {"matmul": 433_041.0, "attention": 101_863.0, "rest": 112_281.0}  # make bench, stm32 dsp bench int8
    a = write_synthetic(tmp_path, Synthetic(seed=1, firmware_id="stm32f4-x+dsp", kernels=split), "a")
    b = write_synthetic(tmp_path, Synthetic(seed=2, firmware_id="stm32f4-x+portable"), "b")
    out = tmp_path / "report"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    assert "kernel_shares.png" in _images(out)
    assert "kernel_shares.png" in _linked(out / "summary.md")
    plain = tmp_path / "plain"
    assert main(["report", str(b), "-o", str(plain)]) == 0
    assert not (plain / "kernel_shares.png").exists()
