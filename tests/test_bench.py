"""`tiny-profiler bench`: plans, boards in parallel on real QEMU, failure isolation, Ctrl-C, baselines and the gate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from profiler.bench.plan import load_plan
from profiler.errors import ConfigError
from profiler.sinks.jsonl import read_jsonl
from tests.cli import CLI

ROOT = Path(__file__).resolve().parent.parent

TWO_BOARDS = """
[defaults]
tokens = 32
repeat = 5
warmup = 1

[matrix]
models = ["demo"]

[[boards]]
name = "stm32-emu"
device = "stm32"
emulate = true

[[boards]]
name = "riscv-emu"
device = "riscv"
emulate = true
tokens = 8
"""


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=timeout)


def _sessions(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob("*.jsonl") if not p.name.endswith(".trace.jsonl"))


def _plan(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- plans --------------------------------------------------------------------


def test_plan_expands_to_a_matrix_per_board_with_overrides(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path, """
[defaults]
tokens = 16
repeat = 5
[matrix]
models = ["demo"]
quantizations = ["int8"]
prompts = ["Once upon a time", "The cat"]
[[boards]]
device = "stm32"
emulate = true
[[boards]]
name = "rv"
device = "riscv"
tokens = [4, 8]
repeat = 6
"""))
    assert [b.name for b in plan.boards] == ["stm32", "rv"] and all(b.emulated for b in plan.boards)
    stm32, rv = plan.sessions["stm32"], plan.sessions["rv"]
    assert [(s.prompt, s.tokens, s.repeat) for s in stm32] == [("Once upon a time", 16, 5), ("The cat", 16, 5)]
    assert sorted((s.prompt, s.tokens, s.repeat) for s in rv) == [
        ("Once upon a time", 4, 6), ("Once upon a time", 8, 6), ("The cat", 4, 6), ("The cat", 8, 6)]
    assert plan.total == 6 and stm32[0].model.quantization == "int8" and stm32[0].model.label == "demo"
    assert load_plan(plan.path, only=["rv"]).boards[0].name == "rv"


def test_the_example_plans_load_and_a_runner_map_replaces_the_plans_own(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    emulated = load_plan(examples / "plan-emulated.toml")
    assert [b.device for b in emulated.boards] == ["stm32", "riscv", "m7", "m55"]
    assert all(b.emulated for b in emulated.boards)
    lab = load_plan(examples / "plan-lab.toml")
    assert lab.hardware_map == examples / "hardware-map.toml"
    assert {b.name: (b.board, b.place, b.emulated) for b in lab.boards} == {
        "nucleo-f405": ("nucleo-f405", None, False), "c3-left": ("c3-left", None, False),
        "f405-remote": (None, "f405-rack2", False), "stm32-emu": (None, None, True)}
    assert {s.model.quantization for s in lab.sessions["nucleo-f405"]} == {"int8", "int4"}
    runner_map = tmp_path / "runner-map.toml"
    runner_map.write_text((examples / "hardware-map.toml").read_text())
    assert load_plan(examples / "plan-lab.toml", hardware_map=runner_map).hardware_map == runner_map
    with pytest.raises(ConfigError, match=r"hardware map .*missing.toml not found; draft one with"):
        load_plan(examples / "plan-lab.toml", hardware_map=tmp_path / "missing.toml")


def test_checkpoints_are_converted_per_quantization(tmp_path: Path) -> None:
    (tmp_path / "stories.bin").write_bytes(b"")  # only named here; `bench` converts it into the run directory
    plan = load_plan(_plan(tmp_path, """
[matrix]
models = [{ path = "stories.bin", tokenizer = "tok512.bin" }]
quantizations = ["int8", "int4"]
[[boards]]
device = "stm32"
"""))
    models = [s.model for s in plan.sessions["stm32"]]
    assert [(m.checkpoint, m.quantization, m.converted_name()) for m in models] == [
        (True, "int8", "stories-int8.tpm"), (True, "int4", "stories-int4.tpm")]
    assert models[0].tokenizer == tmp_path / "tok512.bin"


@pytest.mark.parametrize(("text", "needle"), [
    ("[[boards]]\ndevice = 'stm32'\ncolour = 'red'\n[matrix]\nmodels = ['demo']", "unknown key(s) colour"),
    ("[matrix]\nmodels = ['demo']\n[[boards]]\ndevice = 'esp99'", "unknown device 'esp99'"),
    ("[matrix]\nmodels = ['demo']\n[[boards]]\ndevice = 'stm32'\n[[boards]]\ndevice = 'stm32'", "used twice"),
    ("[matrix]\nmodels = ['demo']\n[[boards]]\ndevice = 'stm32'\nport = '/dev/x'\nemulate = true", "exclude"),
    ("[matrix]\nmodels = ['nope']\n[[boards]]\ndevice = 'stm32'", "model nope not found"),
    ("[matrix]\nmodels = ['demo']\nquantizations = ['int4']\n[[boards]]\ndevice = 'stm32'", "demo is int8"),
    ("[matrix]\nmodels = ['demo']", "no [[boards]]"),
    ("[defaults]\ntokens = 'many'\n[matrix]\nmodels = ['demo']\n[[boards]]\ndevice = 'stm32'", "tokens must be int"),
])
def test_plan_mistakes_are_one_line_naming_the_file(tmp_path: Path, text: str, needle: str) -> None:
    path = _plan(tmp_path, text)
    with pytest.raises((ConfigError, Exception)) as caught:
        load_plan(path)
    assert needle in str(caught.value) and (str(path) in str(caught.value) or "model" in needle)


def test_bad_plan_exits_3_before_anything_runs(tmp_path: Path) -> None:
    result = _cli("bench", str(_plan(tmp_path, "[[boards]]\ndevice = 'stm32'\n")), "--out", str(tmp_path / "run"))
    assert result.returncode == 3 and "no models" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


# -- real boards in parallel ---------------------------------------------------------------------


@pytest.mark.qemu
def test_two_emulated_boards_run_in_parallel_and_are_summarised(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = _cli("bench", str(_plan(tmp_path, TWO_BOARDS)), "--out", str(run_dir), "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    files = _sessions(run_dir)
    assert len(files) == 2
    headers = {}
    for path in files:
        records = read_jsonl(path)
        assert records[0]["type"] == "session" and records[-1]["type"] == "summary"
        assert records[-1]["status"] == "ok", records[-1]["reasons"]
        headers[records[0]["device"]] = records
    assert set(headers) == {"stm32f405", "riscv"}
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = {s["board"]: s for s in summary["sessions"]}
    assert set(rows) == {"stm32-emu", "riscv-emu"} and summary["ok"] == 2 and summary["exit_code"] == 0
    assert rows["stm32-emu"]["decode_tokens_per_s"] == headers["stm32f405"][-1]["decode_tokens_per_s"]
    assert rows["riscv-emu"]["tokens"] == 8 and rows["riscv-emu"]["jsonl"].endswith(".jsonl")
    # Parallel: the whole run took clearly less than its sessions one after another.
    assert summary["wall_s"] < 0.85 * (rows["stm32-emu"]["wall_s"] + rows["riscv-emu"]["wall_s"]), summary
    markdown = (run_dir / "summary.md").read_text()
    assert "| board | model | quant | tokens | prefill tok/s | decode tok/s | TTFT ms | mJ/token | peak RAM KB" \
        in markdown
    assert "stm32-emu (emulated) | demo | int8 | 32 |" in markdown
    assert "riscv-emu (emulated) | demo | int8 | 8 |" in markdown
    assert markdown.count("✅ ok") == 2

    # Baselines accepted from this run pass the gate; baselines 10% faster fail it, naming the metric.
    baselines = tmp_path / "baselines"
    accepted = _cli("baseline", "accept", str(run_dir), "--baselines", str(baselines))
    assert accepted.returncode == 0, accepted.stderr
    assert sorted(p.name for p in baselines.iterdir()) == [
        "riscv32-virt-emulated--demo--int8.jsonl", "stm32f405-emulated--demo--int8.jsonl"]
    plan = _plan(tmp_path, TWO_BOARDS)
    again = _cli("bench", str(plan), "--only", "stm32-emu", "--out", str(tmp_path / "again"),
                 "--baseline", str(baselines), "--fail-on-regression", "--threshold", "5%")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 configuration(s) checked against baselines, 0 regressed" in again.stdout
    _speed_up(baselines / "stm32f405-emulated--demo--int8.jsonl", 1.10)
    slower = _cli("bench", str(plan), "--only", "stm32-emu", "--out", str(tmp_path / "slower"),
                  "--baseline", str(baselines), "--fail-on-regression", "--threshold", "5%")
    assert slower.returncode == 1, slower.stdout + slower.stderr
    assert "regression: stm32f405 (emulated) · demo · int8: decode rate (tok/s): -9.1%" in slower.stdout
    gate = json.loads((tmp_path / "slower" / "summary.json").read_text())["gate"]
    assert gate["failed"] is True and any("decode rate (tok/s)" in line for line in gate["regressions"])
    assert "❌ regression" in (tmp_path / "slower" / "summary.md").read_text()


def _speed_up(path: Path, factor: float) -> None:
    """A baseline that was `factor` times faster at decoding (its repetitions and summary)."""
    records = read_jsonl(path)
    for record in records:
        if record["type"] in ("repetition", "summary") and record.get("decode_tokens_per_s") is not None:
            record["decode_tokens_per_s"] *= factor
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.qemu
def test_a_failing_session_does_not_stop_the_others(tmp_path: Path) -> None:
    plan = _plan(tmp_path, """
[defaults]
tokens = 8
[matrix]
models = ["demo"]
[[boards]]
name = "good"
device = "stm32"
emulate = true
[[boards]]
name = "gone"
device = "stm32"
port = "socket://127.0.0.1:1"
""")
    run_dir = tmp_path / "run"
    result = _cli("bench", str(plan), "--out", str(run_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = {s["board"]: s for s in summary["sessions"]}
    assert rows["good"]["status"] == "ok" and rows["gone"]["status"] == "failed"
    assert rows["gone"]["exit_code"] == 8 and "cannot open socket://127.0.0.1:1" in rows["gone"]["error"]
    failed = read_jsonl(run_dir / rows["gone"]["jsonl"])  # the failed session's file ends with why
    assert failed[-2]["type"] == "error" and failed[-2]["kind"] == "error" and failed[-1]["status"] == "failed"
    assert "gone, demo int8, 8 tokens: failed: cannot open socket://127.0.0.1:1" in (run_dir / "summary.md").read_text()


@pytest.mark.qemu
def test_ctrl_c_stops_every_board_and_leaves_every_file_closed(tmp_path: Path) -> None:
    # Token records are written at the end of each repetition (with their energy), so the first one shows
    # when a repetition is done: enough repetitions remain for Ctrl-C to land while both boards generate.
    plan = _plan(tmp_path, TWO_BOARDS.replace("tokens = 8", "tokens = 12").replace("repeat = 5", "repeat = 20"))
    run_dir = tmp_path / "run"
    bench = subprocess.Popen([*CLI, "bench", str(plan), "--out", str(run_dir), "--jobs", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # both boards are generating tokens
            files = _sessions(run_dir) if run_dir.exists() else []
            if len(files) == 2 and all('"type": "token"' in p.read_text() for p in files):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the two sessions never both started")
        bench.send_signal(signal.SIGINT)
        out, err = bench.communicate(timeout=90)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 130, out + err
    for path in _sessions(run_dir):
        records = read_jsonl(path)  # every line is whole JSON
        assert records[-2]["type"] == "error" and records[-2]["kind"] == "interrupted", records[-2:]
        assert records[-1]["type"] == "summary" and records[-1]["status"] == "interrupted"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["exit_code"] == 130
    assert {s["status"] for s in summary["sessions"]} == {"interrupted"}
    leftover = subprocess.run(["pgrep", "-f", str(ROOT / "profiler" / "bundled" / "demo.tpm")], capture_output=True,
                              text=True, check=False)
    assert str(run_dir) not in leftover.stdout  # no QEMU of ours survives (they are reaped by their sessions)
    assert os.path.isdir(run_dir / "logs")
