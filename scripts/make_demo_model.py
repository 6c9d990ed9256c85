"""Build profiler/bundled/demo.tpm (int8) and demo-int4.tpm from the trained demo checkpoint.

The checkpoint (`profiler/bundled/demo-fp32.bin`, llama2.c legacy fp32) and its
tokenizer (`demo-tokenizer.bin`) come from `scripts/train_demo_model.py`, which
trains on grammar stories from `scripts/story_corpus.py`. Training is not
bit-reproducible across machines, so the checkpoint is committed; this script
is only our own converter applied to it, byte-identical on every run, and
tests/test_models.py checks the committed .tpm files against it.

    python scripts/make_demo_model.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from profiler.models.convert import convert  # noqa: E402
from profiler.models.format import TpmModel  # noqa: E402

BUNDLED = ROOT / "profiler" / "bundled"
CHECKPOINT = BUNDLED / "demo-fp32.bin"
TOKENIZER = BUNDLED / "demo-tokenizer.bin"
GROUP_SIZE = 32
OUTPUTS = {"int8": "demo.tpm", "int4": "demo-int4.tpm"}


def build_demo_models(out_dir: Path) -> dict[str, TpmModel]:
    """Convert the checkpoint to every bundled quantization; returns the models by quantization."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return {quant: convert(CHECKPOINT, TOKENIZER, out_dir / name, quant=quant, group_size=GROUP_SIZE)
            for quant, name in OUTPUTS.items()}


def main(argv: list[str] | None = None) -> int:
    """Write the demo models and say where they went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=BUNDLED, help="output directory")
    args = parser.parse_args(argv)
    for quant, model in build_demo_models(args.out_dir).items():
        path = args.out_dir / OUTPUTS[quant]
        print(f"wrote {path} ({path.stat().st_size:,} bytes, {quant}, {model.config.n_params:,} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
