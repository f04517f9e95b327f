"""Forward+backward time of the pieces of a training step that are not weight GEMMs, per variant:
scaled_dot_product_attention under each backend at translation_speed.py's training shapes, and the
label-smoothed loss (seqattn's hand-written backward, compiled or not, against F.cross_entropy).

    python benchmarks/gpu_kernels.py [--batch 512] [--length 64] [--dtype bf16]

Not a benchmark (it writes no result): a tool for choosing between variants. Medians of 20 timed
runs after 5 warm-up runs, the device synchronised around each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from seqattn.loss import smoothed_cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translation_speed import sync  # noqa: E402


def timed(fn, device, warmup: int = 5, reps: int = 20) -> float:
    """Median milliseconds of ``fn()``."""
    out = []
    for i in range(warmup + reps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        if i >= warmup:
            out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


def attention_rows(b: int, t: int, d: int, heads: int, dtype, device) -> None:
    dh = d // heads
    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    for causal in (False, True):  # as the model calls it in training: a key mask (encoder, cross) or causal
        q, k, v = (torch.randn(b, heads, t, dh, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
        mask = None if causal else torch.ones(b, 1, 1, t, dtype=torch.bool, device=device)  # (B,1,1,S)
        grad = torch.randn(b, heads, t, dh, device=device, dtype=dtype)
        ref = None
        for name, backend in backends.items():
            def run(p=0.1, backend=backend):
                with sdpa_kernel(backend):
                    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, dropout_p=p)
                out.backward(grad)
                return out
            try:
                out = run(0.0).float()
                ref = out if ref is None else ref
                err = ((out - ref).norm() / ref.norm()).item()
                print(f"attention ({b},{heads},{t},{dh}) causal={causal} dropout 0.1 {name:9s} {timed(run, device):8.3f} ms"
                      f"  rel.diff (no dropout) {err:.1e}", flush=True)
            except RuntimeError as exc:
                print(f"attention causal={causal} {name}: unavailable ({str(exc).splitlines()[0][:80]})", flush=True)


def loss_rows(n: int, vocab: int, dtype, device) -> None:
    logits = torch.randn(n, vocab, device=device, dtype=dtype, requires_grad=True)
    target = torch.randint(0, vocab, (n,), device=device)
    compiled = torch.compile(smoothed_cross_entropy, dynamic=False)
    variants = {
        "seqattn eager": lambda: smoothed_cross_entropy(logits, target, 0.1),
        "seqattn compiled": lambda: compiled(logits, target, 0.1),
        "F.cross_entropy(float)": lambda: F.cross_entropy(logits.float(), target, label_smoothing=0.1, reduction="sum"),
    }
    for name, fn in variants.items():
        def run(fn=fn):
            logits.grad = None
            (fn() / n).backward()
        run()
        value, g = fn().item(), logits.grad.float().clone()
        print(f"loss ({n},{vocab}) {name:24s} {timed(run, device):8.3f} ms  value {value:.4f}  grad norm {g.norm():.5f}",
              flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    attention_rows(args.batch, args.length, 512, 8, dtype, device)
    loss_rows(args.batch * args.length, 8000, dtype, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
