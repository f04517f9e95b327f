"""Where a training step's time goes: torch.profiler over a few steps of translation_speed.py's
models and batches, printed as a table of the ops that cost most (device time on a GPU, CPU time
otherwise).

    python benchmarks/profile_step.py [--size base] [--dtype bf16] [--batch 512] [--length 64]
                                      [--which seqattn hf] [--steps 3] [--rows 25] [--compile]

Not a benchmark (it writes no result): a tool for deciding what to speed up next.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translation_speed import SIZES, batch, build_hf, build_seqattn, sync, train_step_fn  # noqa: E402


def profile_one(which: str, size: str, dtype: str, b: int, length: int, steps: int, rows: int, device,
                compiled: bool) -> None:
    torch.manual_seed(0)
    build = build_seqattn if which == "seqattn" else build_hf
    model = build(SIZES[size], 8000, 1100).to(device).train()
    model = torch.compile(model) if compiled else model
    step = train_step_fn(model, which, device, dtype)
    data = [batch(b, length, length, 8000, i, device) for i in range(steps + 3)]
    for args in data[:3]:  # warm-up
        step(*args)
    sync(device)
    gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        for args in data[3:]:
            step(*args)
        sync(device)
    key = "self_cuda_time_total" if gpu else "self_cpu_time_total"
    print(f"== {which} {size} {dtype}{' compiled' if compiled else ''} batch {b}x{length}, {steps} steps ==")
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", choices=list(SIZES), default="base")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--which", nargs="+", choices=["seqattn", "hf"], default=["seqattn", "hf"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--compile", action="store_true", help="the model through torch.compile")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for which in args.which:
        profile_one(which, args.size, args.dtype, args.batch, args.length, args.steps, args.rows, device, args.compile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
