"""Where a training step's time goes: torch.profiler over a few steps of translation_speed.py's
models and batches, printed as a table of the ops that cost most (device time on a GPU, CPU time
otherwise).

    python benchmarks/profile_step.py [--size base] [--dtype fp32|bf16] [--batch B] [--length T]
                                      [--which seqattn hf] [--steps 3] [--rows 25] [--compile]

Defaults follow translation_speed.py's protocol for the device: fp32 and 64 x 24 token batches on
a CPU (bf16 there is ~100x slower), bf16 and 512 x 64 on a GPU.

Not a benchmark (it writes no result): a tool for deciding what to speed up next.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translation_speed import SIZES, TRAIN_BATCH, batch, build_hf, build_seqattn, sync, train_step_fn  # noqa: E402


def op_table(fn, device, rows: int) -> str:
    """torch.profiler over ``fn()``: the ``rows`` ops that cost most, by device time on a GPU and
    CPU time otherwise."""
    gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    key = "self_cuda_time_total" if gpu else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)


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
    table = op_table(lambda: [step(*args) for args in data[3:]], device, rows)
    print(f"== {which} {size} {dtype}{' compiled' if compiled else ''} batch {b}x{length}, {steps} steps ==")
    print(table)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", choices=list(SIZES), default="base")
    p.add_argument("--dtype", choices=["fp32", "bf16"], help="default: bf16 on a GPU, fp32 on a CPU")
    p.add_argument("--batch", type=int, help="sentences per batch; default: translation_speed.py's for the device")
    p.add_argument("--length", type=int, help="tokens per sentence; default: translation_speed.py's for the device")
    p.add_argument("--which", nargs="+", choices=["seqattn", "hf"], default=["seqattn", "hf"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--compile", action="store_true", help="the model through torch.compile")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    b, length = TRAIN_BATCH[device.type]
    b, length = args.batch or b, args.length or length
    for which in args.which:
        profile_one(which, args.size, dtype, b, length, args.steps, args.rows, device, args.compile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
