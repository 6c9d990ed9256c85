"""The Cortex-M4 cycle model against cycle counts measured on real silicon (`make bench`, tests).

Two anchors, built from unmodified upstream code in a scratch copy (never copied into the project):
- pqm4's ML-KEM-512 `m4fspeed` (hand-written Cortex-M4 assembly), built with pqm4's own Makefile for
  QEMU's mps2-an386. pqm4's benchmarks.md: key generation 392,423 cycles, encapsulation 390,881,
  decapsulation 428,167 on a NUCLEO-L4R5ZI at 24 MHz (zero flash wait states), average of 10 runs.
- EEMBC CoreMark, built with our toolchain (arm-none-eabi-gcc, our port in anchors/coremark/) for mps2-an386.
  Arm publishes 3.40 CoreMark/MHz for the Cortex-M4; ST publishes 566 CoreMark at 168 MHz (3.37/MHz) for
  the STM32F405/407, executing from flash with the ART accelerator. A CoreMark score belongs to a core and
  a compiler build together, and the vendors publish their compilers' best builds. Ours is GCC's best of a
  fixed survey of flag sets (COREMARK_SURVEY), best meaning fewest instructions executed per iteration on
  the emulator: the compiler's work, judged without the cycle model. `--survey` prints every build.

Each anchor runs once on the emulated board with our trace plugin; the segments between the
benchmark's own timing calls are predicted with cortex-m4-trm (zero wait states) and, for CoreMark,
also with stm32f4-art (5 wait states at 168 MHz) over the code region. Its self-check must pass:
"OK KEYS" for pqm4, CoreMark's CRCs of the 2K performance run. Prints figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from profiler.cycles import cortex_m4, predict_trace, symbol_address
from profiler.cycles.stm32_art import ArtFlash, wait_states
from profiler.cycles.trace import Trace, plugin_args

ROOT = Path(__file__).resolve().parent.parent
PQM4_SOURCE = "pqm4 benchmarks.md (mupq/pqm4, ML-KEM-512 m4fspeed, NUCLEO-L4R5ZI at 24 MHz, zero wait states)"
PQM4_PUBLISHED = {"keygen": 392_423, "encaps": 390_881, "decaps": 428_167}
PQM4_TARGET = "crypto_kem_ml-kem-512_m4fspeed_speed"
ARM_COREMARK_PER_MHZ = 3.40
ARM_SOURCE = "Arm, Cortex-M4 processor product page: 3.40 CoreMark/MHz"
ST_COREMARK_PER_MHZ = 566 / 168
ST_SOURCE = "ST, STM32F405/415 and STM32F407/417 product pages: 566 CoreMark at 168 MHz from flash with the ART"
COREMARK_ITERATIONS = 20
TARGET_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
# CoreMark's run rules leave the flags to whoever reports a score and require them in the report (FLAGS_STR).
# The survey: GCC's optimisation levels, the flags others publish GCC CoreMark scores with (-funroll-all-loops,
# -finline-limit, SiFive's set for its cores), each with and without link-time optimisation, as vendors'
# compilers build their published scores (Nordic's datasheets: Arm Compiler 6 -Omax -flto). -mfloat-abi changes nothing
# in the timed loop (no floating point there).
_SIFIVE = ("-O2", "-fno-common", "-funroll-loops", "-finline-functions", "--param", "max-inline-insns-auto=20",
           "-falign-functions=4", "-falign-jumps=4", "-falign-loops=4")
COREMARK_SURVEY: tuple[tuple[str, ...], ...] = tuple(
    flags + lto
    for flags in (("-O2",), ("-O3",), ("-Os",), ("-O2", "-funroll-all-loops"), ("-O3", "-funroll-all-loops"),
                  ("-O2", "-funroll-all-loops", "-finline-limit=1000"),
                  ("-O3", "-funroll-all-loops", "-finline-limit=1000"), _SIFIVE)
    for lto in ((), ("-flto",))
)
# The survey's fewest instructions per iteration (251,525 with GCC 12.2; `--survey` shows the ranking).
# -O2 -funroll-all-loops alone executes 271,389, the figure the issue quotes; plain -O2 294,645.
COREMARK_CFLAGS = ("-O2", "-funroll-all-loops", "-finline-limit=1000", "-flto")
STM32F405_HZ = 168_000_000
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-semihosting",
        "-icount", "shift=0"]


@dataclass(frozen=True)
class AnchorResult:
    """One measured operation: the model's cycles next to the published figure."""

    name: str
    predicted_cycles: int
    ipc1_cycles: int  # the instruction count: one instruction per cycle
    source: str
    model: str
    published_cycles: int | None = None
    published_coremark_per_mhz: float | None = None
    predicted_coremark_per_mhz: float | None = None
    ipc1_coremark_per_mhz: float | None = None
    error_percent: float | None = None
    self_check: str = ""
    build: str = ""  # how our binary was built: compiler and flags


@functools.cache
def gcc_version() -> str:
    """The cross compiler that builds both anchors, as CoreMark's report names it."""
    version = subprocess.run(["arm-none-eabi-gcc", "-dumpfullversion"], capture_output=True, text=True).stdout
    return f"arm-none-eabi-gcc {version.strip()}"


def default_shared() -> Path | None:
    """../shared beside the checkout, when it is there."""
    candidate = ROOT.parent / "shared"
    return candidate if (candidate / "cycle-anchors").is_dir() else None


def _scratch(source: Path, work: Path) -> Path:
    """A writable copy of read-only third-party code."""
    target = work / source.name
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target


def run_traced(elf: Path, trace: Path, flash: tuple[int, int] | None = None, timeout_s: float = 120) -> str:
    """Run an mps2-an386 program to its semihosting exit under the trace plugin; what it printed."""
    result = subprocess.run([*QEMU, *plugin_args(trace, flash=flash), "-kernel", str(elf)], capture_output=True,
                            text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    return result.stdout + result.stderr


def pqm4(shared: Path, work: Path) -> list[AnchorResult]:
    """ML-KEM-512 m4fspeed: key generation, encapsulation, decapsulation, each between hal_get_time calls."""
    tree = _scratch(shared / "cycle-anchors" / "pqm4", work)
    subprocess.run(["make", "-s", "-j2", "PLATFORM=mps2-an386", f"bin/{PQM4_TARGET}.bin"], cwd=tree, check=True,
                   capture_output=True)
    elf = tree / "elf" / f"{PQM4_TARGET}.elf"
    output = run_traced(elf, work / "pqm4.trace")
    check = "OK KEYS" if "OK KEYS" in output else "FAILED: " + output.strip()[-200:]
    trace = Trace.read(work / "pqm4.trace", marks=(symbol_address(elf, "hal_get_time"),))
    segments = predict_trace(trace, elf, "cortex-m4", None)
    results = []
    # calls 1, 2 bracket key generation (segment 1), 3, 4 encapsulation (segment 3), 5, 6 decapsulation
    for (name, published), segment in zip(PQM4_PUBLISHED.items(), (1, 3, 5), strict=True):
        s = segments[segment]
        results.append(AnchorResult(
            name=f"ml-kem-512 m4fspeed {name}", predicted_cycles=s.cycles, ipc1_cycles=s.instructions,
            source=PQM4_SOURCE, model=f"{cortex_m4.NAME}/{cortex_m4.VERSION} (zero wait states)",
            published_cycles=published, error_percent=round(100 * (s.cycles / published - 1), 2), self_check=check,
            build=f"pqm4's Makefile, PLATFORM=mps2-an386 ({gcc_version()})",
        ))
    return results


def build_coremark(shared: Path, work: Path, iterations: int = COREMARK_ITERATIONS,
                   flags: tuple[str, ...] = COREMARK_CFLAGS) -> Path:
    """CoreMark's unmodified sources with our mps2-an386 port, built with `flags` (CoreMark prints them)."""
    # the survey builds many times in one `work`: one scratch copy serves them all
    tree = work / "coremark" if (work / "coremark").is_dir() else _scratch(shared / "coremark", work)
    port = ROOT / "benchmarks" / "anchors" / "coremark"
    sources = [tree / f for f in ("core_list_join.c", "core_main.c", "core_matrix.c", "core_state.c", "core_util.c")]
    elf = work / "coremark.elf"
    cflags = (*flags, *TARGET_FLAGS)
    subprocess.run(["arm-none-eabi-gcc", *cflags, f"-DITERATIONS={iterations}", f'-DFLAGS_STR="{" ".join(cflags)}"',
                    f"-I{port}", f"-I{tree}",
                    *map(str, sources), str(port / "core_portme.c"), str(port / "startup.c"),
                    "-T", str(port / "mps2-an386.ld"), "--specs=rdimon.specs", "-nostartfiles", "-o", str(elf)],
                   check=True, capture_output=True)
    return elf


def coremark(shared: Path, work: Path, flags: tuple[str, ...] = COREMARK_CFLAGS) -> list[AnchorResult]:
    """CoreMark/MHz predicted in zero-wait-state memory and from STM32F405 flash behind the ART."""
    elf = build_coremark(shared, work, flags=flags)
    art = ArtFlash(0, 0x40_0000, wait_states(STM32F405_HZ))  # the port links code and constants at 0
    output = run_traced(elf, work / "coremark.trace", flash=(art.base, art.size))
    good = "2K performance run parameters for coremark." in output and "ERROR! list" not in output \
        and "ERROR! matrix" not in output and "ERROR! state" not in output
    check = "CRCs of the 2K performance run match" if good else "FAILED: " + output.strip()[-200:]
    trace = Trace.read(work / "coremark.trace", marks=(symbol_address(elf, "start_time"),
                                                        symbol_address(elf, "stop_time")))
    results = []
    for label, memory, published, source in (
        ("zero wait states", None, ARM_COREMARK_PER_MHZ, ARM_SOURCE),
        (f"STM32F405 flash, {art.wait} wait states + ART", art, ST_COREMARK_PER_MHZ, ST_SOURCE),
    ):
        s = predict_trace(trace, elf, "cortex-m4", memory)[1]  # start_time .. stop_time: the timed iterations
        model = f"{cortex_m4.NAME}/{cortex_m4.VERSION}" + (f" + {art.name}/{art.version}" if memory else "")
        predicted = COREMARK_ITERATIONS * 1e6 / s.cycles
        results.append(AnchorResult(
            name=f"coremark ({label})", predicted_cycles=s.cycles // COREMARK_ITERATIONS,
            ipc1_cycles=s.instructions // COREMARK_ITERATIONS, source=source, model=model,
            published_coremark_per_mhz=round(published, 3), predicted_coremark_per_mhz=round(predicted, 3),
            ipc1_coremark_per_mhz=round(COREMARK_ITERATIONS * 1e6 / s.instructions, 3),
            error_percent=round(100 * (predicted / published - 1), 2), self_check=check,
            build=f"{gcc_version()} {' '.join(flags)}",
        ))
    return results


def survey(shared: Path, work: Path) -> list[tuple[tuple[str, ...], AnchorResult]]:
    """Every COREMARK_SURVEY build, zero wait states, fewest instructions per iteration first. The builds share
    one scratch copy of CoreMark in `work`; each overwrites the last one's ELF and trace."""
    rows = [(flags, coremark(shared, work, flags)[0]) for flags in COREMARK_SURVEY]
    return sorted(rows, key=lambda row: row[1].ipc1_cycles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=None,
                        help="folder holding cycle-anchors/pqm4 and coremark (default: ../shared when present)")
    parser.add_argument("--json", action="store_true", help="one JSON object per measured operation")
    parser.add_argument("--only", choices=("pqm4", "coremark"), help="one anchor only")
    parser.add_argument("--survey", action="store_true",
                        help="build CoreMark with every flag set of the survey and rank them (about a minute)")
    args = parser.parse_args(argv)
    shared = args.shared or default_shared()
    if shared is None or not (shared / "cycle-anchors").is_dir():
        print("cycle anchors: no ../shared with cycle-anchors/ and coremark/; pass --shared DIR", file=sys.stderr)
        return 3
    if args.survey:
        with tempfile.TemporaryDirectory(prefix="cycle-anchors-") as tmp:
            ranked = survey(shared, Path(tmp))
        for flags, r in ranked:
            chosen = flags == COREMARK_CFLAGS
            if args.json:
                print(json.dumps({"survey": True, "flags": " ".join(flags), "anchor_build": chosen,
                                  "instructions_per_iteration": r.ipc1_cycles,
                                  "ipc1_coremark_per_mhz": r.ipc1_coremark_per_mhz,
                                  "predicted_coremark_per_mhz": r.predicted_coremark_per_mhz,
                                  "error_percent": r.error_percent, "self_check": r.self_check}))
            else:
                print(f"{'*' if chosen else ' '} {' '.join(flags):110} {r.ipc1_cycles:>8,} instr/iter  "
                      f"ipc1 {r.ipc1_coremark_per_mhz:.3f}  predicted {r.predicted_coremark_per_mhz:.3f} "
                      f"({r.error_percent:+.1f}% from {ARM_COREMARK_PER_MHZ})")
        return 0
    results: list[AnchorResult] = []
    with tempfile.TemporaryDirectory(prefix="cycle-anchors-") as tmp:
        if args.only in (None, "pqm4"):
            results += pqm4(shared, Path(tmp))
        if args.only in (None, "coremark"):
            results += coremark(shared, Path(tmp))
    for r in results:
        if args.json:
            print(json.dumps({k: v for k, v in asdict(r).items() if v is not None}))
        else:
            published = r.published_cycles if r.published_cycles else f"{r.published_coremark_per_mhz} CoreMark/MHz"
            predicted = r.predicted_cycles if r.published_cycles else f"{r.predicted_coremark_per_mhz} CoreMark/MHz"
            print(f"{r.name:48} predicted {predicted:>12} ipc1 {r.ipc1_cycles:>9,} published {published:>12} "
                  f"({r.error_percent:+.1f}%)  self-check: {r.self_check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
