"""A stories15M-shaped model on the emulated Cortex-M55 (`make bench`): converted from a llama2.c checkpoint,
run from the board's large memory region, checked token for token against the host reference.

No checkpoint can be downloaded here, so the checkpoint has stories15M's shape (dim 288, 6 layers, 6 heads,
6 KV heads, hidden 768, vocab 32000, context 256, shared classifier) and random weights, and its tokenizer is
the demo's 512 tokens padded to 32000 with pieces that never merge. Prints figures, never pass/fail:
decode instructions per token, tokens/s at one instruction a cycle at the STM32N6's 800 MHz, beside the
bandwidth ceiling of the octo-SPI NOR that holds the weights on a real N6 board, and `model fit` over
every board.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from platforms.boards import resolve_board
from profiler.api import RunOptions, plan_run, resolve_model_path
from profiler.models.format import ModelConfig, TpmModel, read_header
from profiler.models.inspect import costs
from profiler.models.llama2c import write_checkpoint
from profiler.models.random_model import random_float_weights
from profiler.models.tokenizer import Tokenizer

SHAPE = ModelConfig(dim=288, hidden_dim=768, n_layers=6, n_heads=6, n_kv_heads=6, vocab_size=32000, seq_len=256,
                    group_size=32, shared_classifier=True)
CLI = [sys.executable, "-m", "profiler.cli"]


def padded_tokenizer(vocab_size: int) -> Tokenizer:
    """The demo's tokenizer with filler pieces up to `vocab_size` (lowest scores: never merged into)."""
    demo = TpmModel.read(resolve_model_path("demo")).tokenizer
    assert demo is not None
    extra = vocab_size - demo.vocab_size
    vocab = demo.vocab + tuple(b"<pad%05d>" % i for i in range(extra))
    scores = demo.scores + tuple(-1e6 - i for i in range(extra))
    return Tokenizer(vocab, scores, max(demo.max_token_length, 10))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_checkpoint(random_float_weights(SHAPE, seed=15), work / "stories15M.bin")
        padded_tokenizer(SHAPE.vocab_size).save(work / "tok32000.bin")
        rows = []
        for quant in ("int8", "int4"):
            model = work / f"stories15M-{quant}.tpm"
            subprocess.run([*CLI, "model", "convert", str(work / "stories15M.bin"), "--tokenizer",
                            str(work / "tok32000.bin"), "-o", str(model), "--quant", quant], check=True,
                           capture_output=True)
            session, _ = plan_run(RunOptions(device="m55", model=str(model), prompt="Once upon a time", tokens=8,
                                             repeat=5, warmup=0, out=work / quant, emulate=True))
            summary = session.run()
            c = costs(read_header(model).config)
            ipt = summary.decode_instructions_per_token
            n6 = resolve_board("stm32n657")
            bandwidth, note = n6.flash_read_bytes_per_s or 0.0, n6.flash_read_note
            rows.append({"model": f"stories15M-shaped {quant}", "params": c.params, "file_bytes": model.stat().st_size,
                         "valid": summary.valid, "reference_match": summary.reference_match,
                         "decode_instructions_per_token": ipt,
                         "instructions_per_weight_mac": ipt / c.weight_macs if ipt else None,
                         "decode_tok_s_at_800mhz_1ipc": 800e6 / ipt if ipt else None,
                         "bandwidth_ceiling_tok_s": bandwidth / c.flash_bytes_per_token, "bandwidth_note": note,
                         "peak_ram_bytes": summary.peak_ram_bytes})
            print(json.dumps(rows[-1]))
        subprocess.run([*CLI, "model", "fit", str(work / "stories15M-int8.tpm")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
