"""Model files, quantization, tokenizer and the bit-exact host reference forward pass.

Modules: `format` (TPMD read/write), `quantize` (int8/int4), `tokenizer`, `llama2c`
(llama2.c checkpoints: legacy, v1, v2), `gguf_import`, `convert`, `random_model`,
`reference`, `fit`, `inspect` (costs and board fit), `evaluate` (quantization error).
"""

from pathlib import Path

DEMO_MODEL_PATH = Path(__file__).resolve().parent.parent / "bundled" / "demo.tpm"
"""The bundled stories260K-shaped demo model, trained on grammar stories by
scripts/train_demo_model.py and converted to int8 by scripts/make_demo_model.py."""
