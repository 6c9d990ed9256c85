"""Model files, quantization, tokenizer and the bit-exact host reference forward pass.

Modules: `format` (TPMD read/write), `quantize`, `tokenizer`, `llama2c` (legacy
checkpoints), `convert`, `random_model`, `reference`, `fit`.
"""

from pathlib import Path

DEMO_MODEL_PATH = Path(__file__).resolve().parent.parent / "bundled" / "demo.tpm"
"""The bundled stories260K-shaped demo model (random weights), built by
scripts/make_demo_model.py."""
