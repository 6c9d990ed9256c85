"""The firmware's parsers under libFuzzer with AddressSanitizer and UBSan.

`make -C firmware fuzz` builds core/ for the host with clang: `fuzz_model` feeds
core/model.c arbitrary model images, `fuzz_host_frames` feeds arbitrary host
bytes through core/protocol.c's decoder into core/app.c's command dispatch
(firmware/fuzz/), both in the f32 and the fixed-point build of core/. Each
runs for TP_FUZZ_SECONDS (default 30) from the seed corpus in
firmware/fuzz/corpus/<target>/; any crash, out-of-bounds access, leak or
undefined behaviour ends the run with a report and fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "firmware" / "fuzz" / "corpus"
TARGETS = ("fuzz_model", "fuzz_host_frames")
SECONDS = int(os.environ.get("TP_FUZZ_SECONDS", "30"))
RSS_LIMIT_MB = 1024  # the fuzzers need ~100 MB; more is a leak or a runaway allocation
TIMEOUT_S = 10  # one input: a hang in a parser or a loop that never ends
# what a sanitizer or libFuzzer prints when it stops a run
_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|"
                     r"SUMMARY: \w+Sanitizer|==\d+== ?ERROR")


# The two arithmetics a board can run: f32 (stm32f4 and other FPU ports) and fixed point with
# the RV32 kernels (riscv-virt, esp32c3); each has its own forward pass behind RUN and EVAL.
ARITHMETIC = {"f32": ["FIXED_POINT=0"], "fixed": ["FIXED_POINT=1", "KERNELS=rv32"]}


@pytest.fixture(scope="module", params=list(ARITHMETIC))
def fuzzers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both fuzzers, built from this tree into a private directory, for one arithmetic."""
    missing = [tool for tool in ("clang", "make") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the firmware fuzzers need Debian's clang "
                    "and libclang-rt-14-dev (`make setup` installs them)")
    build = tmp_path_factory.mktemp("fuzz-build") / request.param  # its name says which
    done = subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "fuzz", f"BUILD_DIR={build}",
                           *ARITHMETIC[request.param]], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"`make -C firmware fuzz` failed (is libclang-rt-14-dev installed?):\n"
                    f"{done.stdout}{done.stderr}")
    return build


@pytest.mark.parametrize("target", TARGETS)
def test_fuzzer_finds_nothing(fuzzers: Path, target: str, tmp_path: Path) -> None:
    seeds = sorted((CORPUS / target).iterdir())
    assert seeds, f"no seed corpus in {CORPUS / target}"
    # new inputs go to a scratch corpus (the first directory); the repository's seeds are read only
    scratch = tmp_path / "corpus"
    scratch.mkdir()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    cmd = [str(fuzzers / target), f"-max_total_time={SECONDS}", f"-rss_limit_mb={RSS_LIMIT_MB}",
           f"-timeout={TIMEOUT_S}", "-print_final_stats=1", f"-artifact_prefix={artifacts}/",
           str(scratch), str(CORPUS / target)]
    # a smaller quarantine of freed blocks: fuzz_model peaks near 80 MB instead of 400 MB
    env = {**os.environ, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "quarantine_size_mb=32")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 120, env=env)
    log = done.stdout + done.stderr

    report = _REPORT.search(log)
    crashes = sorted(p.name for p in artifacts.iterdir())
    assert done.returncode == 0 and report is None and not crashes, (
        f"{target} exited {done.returncode}; reproduce with `{fuzzers / target} "
        f"{artifacts}/<file>`; inputs: {crashes}\n{log[-6000:]}")
    assert f"{len(seeds)} files found in {CORPUS / target}" in log, log[-3000:]
    assert re.search(r"INITED cov: \d+", log), log[-3000:]  # every seed ran
    execs = re.search(r"stat::number_of_executed_units:\s+(\d+)", log)
    assert execs is not None and int(execs.group(1)) > len(seeds), log[-3000:]
    final = re.findall(r"#\d+\s+DONE\s+cov: (\d+) ft: (\d+)", log)
    assert final, log[-3000:]
    rate = re.search(r"stat::average_exec_per_sec:\s+(\d+)", log)
    rss = re.search(r"stat::peak_rss_mb:\s+(\d+)", log)
    print(f"{target} ({fuzzers.name}): {execs.group(1)} execs in {SECONDS} s ({rate.group(1) if rate else '?'}/s), "
          f"cov {final[-1][0]}, ft {final[-1][1]}, peak rss {rss.group(1) if rss else '?'} MB")
