"""Training and decoding speed of seqattn against Hugging Face transformers (MarianMT), on
identical architectures and identical batches.

    python benchmarks/translation_speed.py [--quick] [--dtype fp32|bf16] [--compile]

``--compile`` runs both models' training steps through ``torch.compile`` (default inductor mode, the
forward and backward compiled; the optimizer step stays the fused eager kernel) and skips decoding
and the length scaling, which the eager run measures. Results go to ``...-compile.json``.

Protocol: both models are built from configs (no download) with the same architecture (post-norm
Transformer, ReLU, sinusoidal positions, tied and shared embeddings, dropout 0.1), trained with
the same loss (label-smoothed cross-entropy, 0.1: seqattn's own implementation, the one its trainer
uses, and for HF torch's F.cross_entropy, which makes fewer passes over the logits than
Seq2SeqTrainer's LabelSmoother) and fused AdamW (both trainers' choice), on the same random batches. Steps
are timed alternately (seqattn, HF, seqattn, HF, ...) after warm-up; we report medians, and the JSON
keeps every timed step and search (``step_s``, ``search_s``) so the spread behind each median shows.
Decoding forces the same number of decoder steps in both (EOS suppressed until the last).

FLOPs per training step (documented, as nanoGPT/PaLM count them): 6 x (encoder parameters x
source tokens + decoder parameters x target tokens) for the weight matmuls (embeddings excluded,
the tied output projection included as 6 x D x V per target token), plus attention scores and
weighted sums, 12 x D x (keys attended) per token per attention layer (forward + backward).
MFU is that count per second over a large fp32/bf16 matmul's FLOP/s, timed alternately with the
training steps in the same run (median); on a CPU in fp32 the product is timed both as ``a @ b``
(MKL) and through oneDNN's inner product, and MFU divides by the faster (``probe_flops_per_s``
keeps both). The ``a @ b`` probe runs in the decoding rotation too, there only to show whether the
machine's speed changed during the searches (``probe_spread``, in training too).

Length scaling: one seqattn base training step per length, each in a fresh process (peak RSS is a
process's), after a warm-up step, at a fixed number of tokens per batch: 4,096 on a CPU, 32,768 on a
GPU, and 2,048 in ``--quick`` on a CPU (lengths 64 and 256 only), which keeps quick mode under 3 minutes
on a slow day of the 2-core AMD VM (3 min 1-4 s at 4,096 tokens, 2026-11-24).

Writes benchmarks/results/translation_speed-<device>.json; the last line printed is a JSON
summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_recipe import commit, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAD, UNK, BOS, EOS = 0, 1, 2, 3
# training batch (sentences, tokens each): on a GPU a per-GPU batch of usual size (32k tokens, as the
# scaling runs), since small batches leave it waiting on kernel launches
TRAIN_BATCH = {"cpu": (64, 24), "cuda": (512, 64)}
SIZES = {"small": dict(d=256, layers=3, heads=4, ffn=1024), "base": dict(d=512, layers=6, heads=8, ffn=2048)}


def build_seqattn(size: dict, vocab: int, max_pos: int):
    from seqattn.plugins import get_registry
    from seqattn.recipe import Validator

    layer = {"d_model": size["d"], "layers": size["layers"], "heads": size["heads"], "ffn": size["ffn"],
             "dropout": 0.1, "norm": "post", "positions": "sinusoidal", "activation": "relu", "max_positions": max_pos}
    raw = {"name": "encoder_decoder", "share_embeddings": True, "encoder": {"name": "transformer", **layer},
           "decoder": {"name": "transformer", **layer}}
    return Validator(get_registry()).component(raw, "model", "model").build(vocab, vocab)


def build_hf(size: dict, vocab: int, max_pos: int):
    from transformers import MarianConfig, MarianMTModel

    cfg = MarianConfig(vocab_size=vocab, d_model=size["d"], encoder_layers=size["layers"], decoder_layers=size["layers"],
                       encoder_attention_heads=size["heads"], decoder_attention_heads=size["heads"],
                       encoder_ffn_dim=size["ffn"], decoder_ffn_dim=size["ffn"], activation_function="relu",
                       dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, scale_embedding=True,
                       max_position_embeddings=max_pos, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS,
                       decoder_start_token_id=BOS, forced_eos_token_id=None, share_encoder_decoder_embeddings=True,
                       tie_word_embeddings=True)
    return MarianMTModel(cfg)


def batch(b: int, s: int, t: int, vocab: int, seed: int, device):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (b, s), generator=g)
    tgt = torch.randint(4, vocab, (b, t + 1), generator=g)
    return [x.to(device) for x in (src, torch.ones(b, s, dtype=torch.bool), tgt[:, :-1], tgt[:, 1:])]


def precision(device, dtype: str):
    """A fresh context: bf16 autocast for dtype "bf16", autocast off (fp32) otherwise."""
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def train_step_fn(model, kind: str, device, dtype: str):
    """One training step of ``model`` with its own optimizer: fused AdamW in both frameworks, as both
    trainers build it (HF Trainer's default optim is adamw_torch_fused)."""
    from seqattn.loss import smoothed_cross_entropy

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step(src, mask, tgt_in, tgt_out):
        with precision(device, dtype):
            if kind == "hf":
                logits = model(input_ids=src, attention_mask=mask.long(), decoder_input_ids=tgt_in).logits
                logits, target = logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1)
                loss = F.cross_entropy(logits.float(), target, label_smoothing=0.1, reduction="sum")
            else:
                select = tgt_out != PAD
                logits, target = model(src, mask, tgt_in, select), tgt_out[select]
                loss = smoothed_cross_entropy(logits, target, 0.1)
            loss = loss / target.numel()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def alternate(fns: dict, args_fn, warmup: int, steps: int, device) -> dict:
    """Time each fn on the same inputs, interleaved A B A B ...; returns seconds per step lists."""
    times = {k: [] for k in fns}
    for i in range(warmup + steps):
        args = args_fn(i)
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn(*args)
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def matmul_probe(device, dtype: str, n: int | None = None, reps: int | None = None):
    """A step that runs ``reps`` n x n matmuls, and its FLOPs; timed alternately with the training
    steps, so MFU divides by the peak measured at the same moments. (On a shared 2-core VM the same
    product ran at 90 to 169 GFLOP/s a few seconds apart: one probe before or after the steps can
    put MFU anywhere, even above 100%.) On the CPU n = 2048 is on the plateau (Intel Xeon: 1,024
    ~320 GFLOP/s, 2,048 to 4,096 350-370); a GPU needs n = 8,192 to approach its peak (a 2,048
    product lasts tens of microseconds there, so the probe would time launches and understate the
    peak, overstating MFU)."""
    gpu = device.type == "cuda"
    n, reps = n or (8192 if gpu else 2048), reps or (20 if gpu else 3)
    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=kind), torch.randn(n, n, device=device, dtype=kind)

    def step(*_batch):
        for _ in range(reps):
            a @ b
    return step, 2.0 * n**3 * reps


def onednn_probe(device, dtype: str, n: int = 2048, reps: int = 3):
    """The probe's product through oneDNN's fp32 inner product (``torch.ops.mkldnn``), which
    seqattn's Linear uses for training on the oneDNN path (see ``seqattn/linear.py``); None where
    that does not apply (a GPU, bf16, a torch build without it). On the 2-core AMD EPYC it ran the
    2,048 product at 208-212 GFLOP/s against 179-184 for ``a @ b`` (MKL): MFU divides by the faster
    of the two, so a faster kernel in seqattn cannot inflate it."""
    if device.type != "cpu" or dtype != "fp32" or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return None
    a, b = torch.randn(n, n), torch.randn(n, n)

    def step(*_batch):
        for _ in range(reps):
            torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")  # a @ b.T
    return step


def train_flops(size: dict, vocab: int, b: int, s: int, t: int) -> float:
    d, f, n = size["d"], size["ffn"], size["layers"]
    enc_layer = 4 * d * d + 2 * d * f  # attention projections + feed-forward (weights only)
    dec_layer = 8 * d * d + 2 * d * f  # self + cross attention projections + feed-forward
    weights = 6 * (n * enc_layer * b * s + (n * dec_layer + d * vocab) * b * t)
    attention = 12 * d * n * (b * s * s + b * t * t + b * t * s)
    return float(weights + attention)


def bench_training(size_name: str, vocab: int, b: int, s: int, t: int, warmup: int, steps: int, device, dtype,
                   compiled: bool = False) -> dict:
    size = SIZES[size_name]
    torch.manual_seed(0)
    models = {"seqattn": build_seqattn(size, vocab, 1100).to(device), "hf": build_hf(size, vocab, 1100).to(device)}
    if compiled:  # as HF Trainer's torch_compile=True does: the module, not the optimizer step
        models = {k: torch.compile(m) for k, m in models.items()}
    fns = {k: train_step_fn(m.train(), k, device, dtype) for k, m in models.items()}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    fns["probe"], probe_flops = matmul_probe(device, dtype)
    onednn = onednn_probe(device, dtype)
    if onednn is not None:
        fns["probe_onednn"] = onednn
    times = alternate(fns, lambda i: batch(b, s, t, vocab, i, device), warmup, steps, device)
    med = {k: statistics.median(v) for k, v in times.items()}
    probes = {k: probe_flops / med.pop(k) for k in ("probe", "probe_onednn") if k in med}  # FLOP/s of each
    peak = max(probes.values())
    flops = train_flops(size, vocab, b, s, t)
    out = {"params": params, "batch": [b, s, t], "median_step_s": med, "step_s": times, "peak_matmul_flops": peak,
           "probe_flops_per_s": probes, "step_flops": flops}
    for k in models:
        out[f"{k}_tokens_per_s"] = b * t / med[k]
        out[f"{k}_mfu"] = flops / med[k] / peak
    out["speedup_vs_hf"] = med["hf"] / med["seqattn"]
    out["paired_speedup_vs_hf"] = paired(times["seqattn"], times["hf"])
    out["probe_spread"] = max(times["probe"]) / min(times["probe"])
    return out


def paired(ours: list[float], theirs: list[float]) -> float:
    """A robustness figure beside the headline ratio of medians: the median of each seqattn time's
    ratio to the HF time taken right after it, which a change in the machine's speed during the
    run moves less. (The probe's slowest over fastest time, ``probe_spread``, tells whether there
    was such a change: well above 1.)"""
    return statistics.median(t / o for o, t in zip(ours, theirs))


def decoding_runs(size_name: str, vocab: int, b: int, s: int, steps: int, device) -> dict:
    """The four searches timed side by side, each decoding exactly ``steps`` tokens for ``b``
    sources of ``s`` tokens: seqattn's and HF's greedy and beam-4, as argument-less callables."""
    from seqattn.search import beam_search, greedy

    size = SIZES[size_name]
    torch.manual_seed(0)
    sa, hf = build_seqattn(size, vocab, 1100).to(device).eval(), build_hf(size, vocab, 1100).to(device).eval()
    src, mask, _, _ = batch(b, s, 1, vocab, 123, device)
    return {
        "seqattn_greedy": lambda: greedy(sa, src, mask, bos=BOS, eos=EOS, max_len_a=0, max_len_b=steps - 1,
                                         min_len=steps - 1),
        "hf_greedy": lambda: hf.generate(input_ids=src, attention_mask=mask.long(), num_beams=1, do_sample=False,
                                         min_new_tokens=steps, max_new_tokens=steps),
        "seqattn_beam4": lambda: beam_search(sa, src, mask, bos=BOS, eos=EOS, beam=4, max_len_a=0,
                                             max_len_b=steps - 1, min_len=steps - 1),
        "hf_beam4": lambda: hf.generate(input_ids=src, attention_mask=mask.long(), num_beams=4, do_sample=False,
                                        min_new_tokens=steps, max_new_tokens=steps, early_stopping=False),
    }


def bench_decoding(size_name: str, vocab: int, b: int, s: int, steps: int, reps: int, device, dtype) -> dict:
    fns = decoding_runs(size_name, vocab, b, s, steps, device)
    # the matmul probe joins the rotation, as in training, to show whether the machine's speed changed
    fns["probe"], _ = matmul_probe(device, dtype)
    with torch.no_grad(), precision(device, dtype):
        times = alternate(fns, lambda i: (), 1, reps, device)
    probe_s = times.pop("probe")
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"batch": b, "steps": steps, "median_s": med, "search_s": times,  # every timed search, in order
           "probe_s": probe_s, "probe_spread": max(probe_s) / min(probe_s)}
    for k in med:
        out[f"{k}_tokens_per_s"] = b * steps / med[k]
    for search in ("greedy", "beam4"):
        out[f"{search}_speedup_vs_hf"] = med[f"hf_{search}"] / med[f"seqattn_{search}"]
        out[f"paired_{search}_speedup_vs_hf"] = paired(times[f"seqattn_{search}"], times[f"hf_{search}"])
    return out


def scaling_child(size_name: str, vocab: int, length: int, tokens: int, device_name: str, dtype: str) -> None:
    """Run in a subprocess: one seqattn training step at ``length``; prints time and peak memory."""
    import resource

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = build_seqattn(SIZES[size_name], vocab, 1100).to(device).train()
    step = train_step_fn(model, "seqattn", device, dtype)
    b = max(1, tokens // length)
    step(*batch(b, length, length, vocab, 0, device))  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sync(device)
    t0 = time.perf_counter()
    step(*batch(b, length, length, vocab, 1, device))
    sync(device)
    mem = torch.cuda.max_memory_allocated() if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"length": length, "batch": b, "step_s": time.perf_counter() - t0, "peak_bytes": mem,
                      "rss_before_bytes": rss0 * 1024}))


def bench_scaling(size_name: str, vocab: int, lengths: list[int], tokens: int, device, dtype) -> list[dict]:
    rows = []
    for length in lengths:
        out = subprocess.run([sys.executable, __file__, "--scaling-child", size_name, str(vocab), str(length), str(tokens),
                              str(device), dtype], capture_output=True, text=True, env={**os.environ})
        if out.returncode != 0:
            rows.append({"length": length, "error": out.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  scaling {size_name} length {length}: {rows[-1]}", flush=True)
    return rows


def warn_spread(spread: float, part: str) -> None:
    if spread > 1.25:
        print(f"warning: the matmul probe's time varied x{spread:.2f} during {part}: the machine's speed changed"
              " during the run, so its figures are unreliable", flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small step counts, under 3 minutes on 2 CPU cores")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--compile", action="store_true", help="training through torch.compile; no decoding or scaling")
    p.add_argument("--scaling-child", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.scaling_child:
        size, vocab, length, tokens, dev, dtype = args.scaling_child
        scaling_child(size, int(vocab), int(length), int(tokens), dev, dtype)
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    vocab = 8000
    gpu = device.type == "cuda"
    warm, steps = (2, 6) if args.quick else (5, 20)
    train_b, train_len = TRAIN_BATCH[device.type]
    result = {"commit": commit(), "machine": machine(), "date": time.strftime("%Y-%m-%d"), "dtype": args.dtype,
              "device": str(device), "quick": args.quick, "compile": args.compile, "training": {}, "decoding": {},
              "scaling": {}}
    import transformers

    result["machine"]["transformers"] = transformers.__version__
    for size in ("small", "base"):
        r = bench_training(size, vocab, train_b, train_len, train_len, warm, steps, device, args.dtype, args.compile)
        result["training"][size] = r
        print(f"train {size}: seqattn {r['seqattn_tokens_per_s']:.0f} tok/s (MFU {r['seqattn_mfu']:.1%}), "
              f"hf {r['hf_tokens_per_s']:.0f} tok/s (MFU {r['hf_mfu']:.1%}), x{r['speedup_vs_hf']:.2f}"
              f" (paired x{r['paired_speedup_vs_hf']:.2f}, probe spread {r['probe_spread']:.2f})", flush=True)
        warn_spread(r["probe_spread"], f"{size} training")
    dec_size = "small" if args.quick else "base"
    for b in () if args.compile else (32, 1):
        r = bench_decoding(dec_size, vocab, b, 20, 25, 2 if args.quick else 5, device, args.dtype)
        result["decoding"][f"{dec_size}_batch{b}"] = r
        print(f"decode {dec_size} batch {b}: greedy x{r['greedy_speedup_vs_hf']:.2f} (paired"
              f" x{r['paired_greedy_speedup_vs_hf']:.2f}), beam4 x{r['beam4_speedup_vs_hf']:.2f} (paired"
              f" x{r['paired_beam4_speedup_vs_hf']:.2f}), probe spread {r['probe_spread']:.2f}"
              f" ({ {k: round(v) for k, v in r.items() if k.endswith('tokens_per_s')} })", flush=True)
        warn_spread(r["probe_spread"], f"decoding at batch {b}")
    lengths = [] if args.compile else [64, 256] if args.quick else [64, 128, 256, 512, 1024]
    tokens = 32768 if gpu else 2048 if args.quick else 4096  # per batch; see the docstring
    result["scaling"]["base"] = bench_scaling("base", vocab, lengths, tokens, device, args.dtype)
    decoded = result["decoding"].values()
    summary = {
        "train_speedup_vs_hf": round(min(result["training"][s]["speedup_vs_hf"] for s in SIZES), 3),
        "decode_beam4_speedup_vs_hf": round(min(r["beam4_speedup_vs_hf"] for r in decoded), 3) if decoded else None,
        "decode_greedy_speedup_vs_hf": round(min(r["greedy_speedup_vs_hf"] for r in decoded), 3) if decoded else None,
        "mfu": round(result["training"]["base"]["seqattn_mfu"], 4),
        "hf_mfu": round(result["training"]["base"]["hf_mfu"], 4),
    }
    result["summary"] = summary
    name = f"translation_speed-{'gpu' if gpu else 'cpu'}{'-quick' if args.quick else ''}{'-bf16' if args.dtype == 'bf16' else ''}"
    name += "-compile" if args.compile else ""
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
