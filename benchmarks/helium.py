"""Helium on the emulated Cortex-M55 (`make bench`): instructions and vector instructions per decode step.

The acceptance model (278,528 weight MACs, groups of 32, int8 KV cache) in int8 and int4, prompt "" (BOS),
32 tokens, decode steps 1..31, with the m55's default `helium` kernels, and the M7 beside it with its `dsp`
kernels. Per step: instructions from the board's ticks (as `decode_instructions_per_token`), and from
QEMU's execution log (`-d in_asm,exec,nochain`, as benchmarks/kernels.py reads it) split into vector
(Helium: any instruction on a Q register, VPT/VPST/VCTP) and scalar ones, by function.

QEMU 7.2's disassembler does not know Helium: it prints a 32-bit MVE instruction as two 16-bit lines. So
the instruction boundaries and mnemonics here come from the firmware's own disassembly (binutils' objdump
for armv8.1-m.main), and the log only says which blocks ran how often. The Cortex-M55 runs most 128-bit
vector instructions in two beats, so vector instructions per token, not instructions, bound its cycles.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

from profiler.api import RunOptions, plan_run
from profiler.cycles.disasm import objdump_lines
from profiler.firmware import cache_dir
from profiler.models.format import read_header
from profiler.models.inspect import costs
from profiler.sinks.jsonl import read_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernels import bench_models, decode_steps, traced_run  # siblings: run as `python benchmarks/helium.py`

TOKENS = 32
_VECTOR = re.compile(r"\bq[0-7]\b")


def instructions(elf: Path) -> dict[int, bool]:
    """Address -> is a Helium instruction, for every instruction of the ELF (objdump, armv8.1-m.main)."""
    return {addr: bool(_VECTOR.search(operands)) or mnemonic.startswith(("vpst", "vpt", "vctp"))
            for addr, _, mnemonic, operands in objdump_lines(elf, "arm-none-eabi-objdump", "binutils-arm-none-eabi",
                                                             machine="armv8.1-m.main")}


def options(device: str, kernels: str, model: Path, out: Path, trace: bool) -> RunOptions:
    """Prompt "" (BOS), 5 repetitions; traced: one repetition and one more token, which bounds the last step."""
    return RunOptions(device=device, model=str(model), prompt="", tokens=TOKENS + int(trace),
                      repeat=5 if not trace else 1, warmup=0, out=out, emulate=True, kernels=kernels)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = bench_models(work)
        for device, kernels in (("m55", "helium"), ("m7", "dsp")):
            for name in ("bench int8", "bench int4"):
                out = work / f"{device}-{name}".replace(" ", "-")
                session, path = plan_run(options(device, kernels, models[name], out, trace=False))
                session.run()
                records = read_jsonl(path)
                summary = records[-1]
                ipt = summary["decode_instructions_per_token"]
                weight_macs = costs(read_header(models[name]).config).weight_macs
                row = {"board": device, "kernels": kernels, "model": name, "valid": summary["valid"],
                       "decode_instructions_per_token": ipt, "instructions_per_weight_mac": ipt / weight_macs}
                if device == "m55":
                    elf = cache_dir() / records[0]["firmware_id"] / "firmware.elf"
                    traced, tracer = traced_run(options(device, kernels, models[name], out / "trace", trace=True),
                                                elf)
                    kinds = instructions(elf)
                    steps = decode_steps(traced)[:TOKENS - 1]
                    total: Counter[str] = Counter()
                    by_function: Counter[str] = Counter()
                    for seg in tracer.segments[2:2 + TOKENS - 1]:  # prompt "" is BOS only: forward 1 is step 1
                        for (_, pc, n), times in seg.items():
                            for p in tracer.blocks.get(pc, [pc])[:n]:
                                if p in kinds:
                                    kind = "vector" if kinds[p] else "scalar"
                                    total[kind] += times
                                    if kinds[p]:
                                        by_function[tracer.symbols.name(p)] += times
                    per = TOKENS - 1
                    row |= {"traced_instructions_per_token": (total["vector"] + total["scalar"]) / per,
                            "tick_instructions_per_token_traced_run": sum(steps) / len(steps),
                            "vector_instructions_per_token": total["vector"] / per,
                            "vector_instructions_by_function": {k: v / per for k, v in by_function.most_common(8)}}
                print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
