"""Where a search's time goes: torch.profiler over one of translation_speed.py's forced-length
searches (the same models, sources and step count), printed as a table of the ops that cost most
(device time on a GPU, CPU time otherwise), with the search's median wall time beside it.

    python benchmarks/profile_decode.py [--size base] [--batch 32] [--search seqattn_greedy hf_greedy]
                                        [--reps 5] [--rows 25] [--dtype fp32|bf16]

Wall time minus the ops' own time is roughly the Python between them (the profiler adds a little
to each op). Not a benchmark (it writes no result): a tool for deciding what to speed up next.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_step import op_table  # noqa: E402
from translation_speed import SIZES, decoding_runs, precision, sync  # noqa: E402

SEARCHES = ["seqattn_greedy", "hf_greedy", "seqattn_beam4", "hf_beam4"]


def profile_search(name: str, run, reps: int, rows: int, device) -> None:
    run()  # warm-up: packs, caches, allocator
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - start)
    table = op_table(run, device, rows)
    print(f"== {name}: median {1000 * statistics.median(times):.1f} ms over {reps} searches ==")
    print(table)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", choices=list(SIZES), default="base")
    p.add_argument("--batch", type=int, default=32, help="sources per search")
    p.add_argument("--steps", type=int, default=25, help="tokens decoded (forced)")
    p.add_argument("--search", nargs="+", choices=SEARCHES, default=SEARCHES)
    p.add_argument("--reps", type=int, default=5, help="timed searches for the median")
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runs = decoding_runs(args.size, 8000, args.batch, 20, args.steps, device)
    with torch.no_grad(), precision(device, args.dtype):
        for name in args.search:
            profile_search(name, runs[name], args.reps, args.rows, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
