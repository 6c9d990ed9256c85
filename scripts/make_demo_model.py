"""Build profiler/bundled/demo.tpm: a stories260K-shaped model with seeded random weights.

The weights are random (so the file is ours to ship), the tokenizer is trained on
scripts/demo_corpus.txt. The output is byte-identical on every run and machine;
tests/test_models.py checks the committed file against a fresh build.

    python scripts/make_demo_model.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from profiler.models.format import ModelConfig, TpmModel  # noqa: E402
from profiler.models.random_model import make_random_model  # noqa: E402
from profiler.models.tokenizer import train_bpe  # noqa: E402

DEMO_CONFIG = ModelConfig(dim=64, hidden_dim=172, n_layers=5, n_heads=8, n_kv_heads=4,
                          vocab_size=512, seq_len=64, group_size=32, shared_classifier=True)
DEMO_SEED = 36  # of seeds 0..39, the most varied greedy run after "Once upon a time"
CORPUS = ROOT / "scripts" / "demo_corpus.txt"
DEFAULT_OUT = ROOT / "profiler" / "bundled" / "demo.tpm"


def build_demo_model() -> TpmModel:
    """The demo model, identical on every call."""
    tokenizer = train_bpe(CORPUS.read_text(encoding="utf-8"), DEMO_CONFIG.vocab_size)
    return make_random_model(DEMO_CONFIG, DEMO_SEED, tokenizer)


def main(argv: list[str] | None = None) -> int:
    """Write the demo model and say where it went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output file")
    args = parser.parse_args(argv)
    model = build_demo_model()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.write(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, "
          f"{model.config.n_params} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
