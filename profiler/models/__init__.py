"""Model files, quantization, tokenizer and the bit-exact host reference forward pass.

Modules: `format` (TPMD read/write), `quantize`, `tokenizer`, `llama2c` (legacy
checkpoints), `convert`, `random_model`, `reference`, `fit`.
"""
