"""Run a recipe end to end with the CLI and record its wall time and test metrics.

    python benchmarks/run_recipe.py recipes/multi30k_transformer.yaml [--set K=V ...]

writes ``benchmarks/results/<recipe name>-<device>.json`` with the command, commit, machine,
torch version, the resolved recipe, wall seconds and the final metrics from ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from seqattn import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("recipe")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--output", help="run directory (default runs/bench-<recipe>)")
    args = p.parse_args()
    name = Path(args.recipe).stem
    run_dir = Path(args.output or ROOT / "runs" / f"bench-{name}")
    cmd = ["seqattn", "run", args.recipe, "--output", str(run_dir)] + [a for s in args.overrides for a in ("--set", s)]
    code = commit()  # the code that runs, read before the run (later commits must not be credited)
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "seqattn.cli", *cmd[1:]], cwd=ROOT)
    wall = time.time() - start
    if proc.returncode != 0:
        print(f"run failed with status {proc.returncode}", file=sys.stderr)
        return proc.returncode
    results = json.loads((run_dir / "results.json").read_text())
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "tokens_per_s" in m]
    # the trainer always ends on a checkpoint; the log only has every log_every-th step
    last = ckpt.complete_checkpoints(run_dir)
    updates = ckpt.read_json(last[-1] / "state.json")["step"] if last else 0
    device = "gpu" if torch.cuda.is_available() else "cpu"
    record = {
        "name": name, "command": " ".join(cmd), "commit": code, "machine": machine(), "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": round(wall, 1), "updates": updates,
        "train_tokens_per_s_median": sorted(m["tokens_per_s"] for m in steps)[len(steps) // 2] if steps else None,
        "results": results, "recipe": yaml.safe_load((run_dir / "recipe.yaml").read_text()),
    }
    out = ROOT / "benchmarks" / "results" / f"{name}-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}: wall {wall:.0f}s, results {json.dumps({k: v for k, v in results.items() if k != 'model'})[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
