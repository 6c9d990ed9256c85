"""Train the demo model on grammar stories (scripts/story_corpus.py) with PyTorch on the CPU.

Writes a llama2.c legacy fp32 checkpoint and its tokenizer.bin; then
`scripts/make_demo_model.py` converts them with our own converter into
profiler/bundled/demo.tpm. Needs the `train` extra: `pip install -e .[train]`.

    python scripts/train_demo_model.py [--steps 1000] [--out-dir profiler/bundled]

Shape: the stories260K shape (dim 64, hidden 172, 5 layers, 8 heads, 4 KV heads,
vocab 512) with a 64-token context. Training is seeded, but float results differ
between machines and PyTorch builds, so the committed checkpoint is the artifact
and the tests check that demo.tpm is exactly its conversion.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
sys.path.insert(0, str(ROOT / "scripts"))

from story_corpus import stories  # noqa: E402

from profiler.models.format import ModelConfig  # noqa: E402
from profiler.models.llama2c import FloatWeights, write_checkpoint  # noqa: E402
from profiler.models.tokenizer import train_bpe  # noqa: E402

CONFIG = ModelConfig(dim=64, hidden_dim=172, n_layers=5, n_heads=8, n_kv_heads=4, vocab_size=512, seq_len=64)
TRAIN_STORIES, TRAIN_SEED = 24_000, 1
VAL_STORIES, VAL_SEED = 400, 2  # another seed: the validation stories are not in the training set
TOKENIZER_STORIES = 6_000  # the BPE merges are learned on the first stories of the training set


def validation_text() -> str:
    """The held-out stories `model eval` measures perplexity on, one per line."""
    return "\n".join(stories(VAL_STORIES, VAL_SEED)) + "\n"


def _tokens(texts: list[str], tokenizer) -> np.ndarray:  # type: ignore[no-untyped-def]
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer.encode(text, bos=True))
    return np.array(ids, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    """Train, report the validation loss, write the checkpoint and tokenizer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "profiler" / "bundled")
    parser.add_argument("--name", default="demo")
    args = parser.parse_args(argv)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("PyTorch is missing: pip install -e '.[train]' (CPU wheel, torch==2.13.0)", file=sys.stderr)
        return 2
    torch.manual_seed(1234)
    torch.set_num_threads(args.threads)
    started = time.monotonic()

    train_texts = stories(TRAIN_STORIES, TRAIN_SEED)
    tokenizer = train_bpe("\n".join(train_texts[:TOKENIZER_STORIES]), CONFIG.vocab_size)
    train = torch.from_numpy(_tokens(train_texts, tokenizer))
    val = torch.from_numpy(_tokens(validation_text().splitlines(), tokenizer))
    print(f"corpus: {len(train_texts)} stories, {len(train):,} training tokens, {len(val):,} validation tokens "
          f"({time.monotonic() - started:.0f} s)", flush=True)

    c = CONFIG
    hs, kv = c.head_size, c.kv_dim
    g = torch.Generator().manual_seed(1)

    def param(*shape: int, std: float) -> torch.nn.Parameter:
        return torch.nn.Parameter(torch.randn(*shape, generator=g) * std)

    std, proj_std = 0.02, 0.02 / math.sqrt(2 * c.n_layers)
    p = {
        "emb": param(c.vocab_size, c.dim, std=std),
        "rms_att": torch.nn.Parameter(torch.ones(c.n_layers, c.dim)),
        "rms_ffn": torch.nn.Parameter(torch.ones(c.n_layers, c.dim)),
        "rms_final": torch.nn.Parameter(torch.ones(c.dim)),
        "wq": param(c.n_layers, c.dim, c.dim, std=std), "wk": param(c.n_layers, kv, c.dim, std=std),
        "wv": param(c.n_layers, kv, c.dim, std=std), "wo": param(c.n_layers, c.dim, c.dim, std=proj_std),
        "w1": param(c.n_layers, c.hidden_dim, c.dim, std=std),
        "w2": param(c.n_layers, c.dim, c.hidden_dim, std=proj_std),
        "w3": param(c.n_layers, c.hidden_dim, c.dim, std=std),
    }
    freqs = 1.0 / 10000.0 ** (torch.arange(0, hs, 2).float() / hs)
    angles = torch.outer(torch.arange(c.seq_len).float(), freqs)
    cos, sin = torch.cos(angles), torch.sin(angles)  # (T, hs/2)

    def rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))

    def rope(x: torch.Tensor) -> torch.Tensor:  # (B, T, H, hs), pairs (2i, 2i+1) as llama2.c
        t = x.shape[1]
        a, b = x[..., 0::2], x[..., 1::2]
        cs, sn = cos[:t, None, :], sin[:t, None, :]
        return torch.stack([a * cs - b * sn, a * sn + b * cs], dim=-1).flatten(-2)

    def forward(idx: torch.Tensor) -> torch.Tensor:
        bsz, t = idx.shape
        x = p["emb"][idx]
        for layer in range(c.n_layers):
            h = rms(x, p["rms_att"][layer])
            q = rope((h @ p["wq"][layer].T).view(bsz, t, c.n_heads, hs))
            k = rope((h @ p["wk"][layer].T).view(bsz, t, c.n_kv_heads, hs))
            v = (h @ p["wv"][layer].T).view(bsz, t, c.n_kv_heads, hs)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            y = y.transpose(1, 2).reshape(bsz, t, c.dim)
            x = x + y @ p["wo"][layer].T
            h = rms(x, p["rms_ffn"][layer])
            x = x + (F.silu(h @ p["w1"][layer].T) * (h @ p["w3"][layer].T)) @ p["w2"][layer].T
        return rms(x, p["rms_final"]) @ p["emb"].T

    decay = [p[k] for k in ("emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3")]
    no_decay = [p[k] for k in ("rms_att", "rms_ffn", "rms_final")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 30)

    def batch(data: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(data) - c.seq_len - 1, (n,), generator=g)
        rows = torch.stack([data[s:s + c.seq_len + 1] for s in starts.tolist()])
        return rows[:, :-1], rows[:, 1:]

    def val_loss(limit: int | None = None) -> float:
        with torch.no_grad():
            n = (len(val) - 1) // c.seq_len
            n = min(n, limit or n)
            rows = val[:n * c.seq_len + 1]
            x = torch.stack([rows[i * c.seq_len:(i + 1) * c.seq_len] for i in range(n)])
            y = torch.stack([rows[i * c.seq_len + 1:(i + 1) * c.seq_len + 1] for i in range(n)])
            return float(F.cross_entropy(forward(x).reshape(-1, c.vocab_size), y.reshape(-1)))

    for step in range(1, args.steps + 1):
        lr = args.lr * min(1.0, step / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batch(train, args.batch)
        loss = F.cross_entropy(forward(x).reshape(-1, c.vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        if step % 250 == 0 or step == args.steps:
            vl = val_loss(None if step == args.steps else 128)
            print(f"step {step}/{args.steps}  loss {loss.item():.3f}  val loss {vl:.3f}  ppl {math.exp(vl):.2f}  "
                  f"lr {lr:.2e}  {time.monotonic() - started:.0f} s", flush=True)

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().numpy().astype(np.float32)

    weights = FloatWeights(
        config=c, token_embedding=arr(p["emb"]), rms_att=arr(p["rms_att"]), wq=arr(p["wq"]), wk=arr(p["wk"]),
        wv=arr(p["wv"]), wo=arr(p["wo"]), rms_ffn=arr(p["rms_ffn"]), w1=arr(p["w1"]), w2=arr(p["w2"]),
        w3=arr(p["w3"]), rms_final=arr(p["rms_final"]), wcls=None,
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out_dir / f"{args.name}-fp32.bin"
    tokenizer_path = args.out_dir / f"{args.name}-tokenizer.bin"
    write_checkpoint(weights, checkpoint)
    tokenizer.save(tokenizer_path)
    minutes = (time.monotonic() - started) / 60
    print(f"wrote {checkpoint} and {tokenizer_path}; validation perplexity {math.exp(val_loss()):.3f}; "
          f"{minutes:.1f} min wall time", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
