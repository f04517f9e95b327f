"""A run killed with SIGKILL at arbitrary moments and resumed ends bitwise equal to an
uninterrupted run: parameters, optimizer state, data position and RNG included."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from helpers import ENV, ROOT, seqattn, tiny_recipe, write_recipe

STEPS = 40


def _start(path, run, resume):
    args = [sys.executable, "-m", "seqattn.cli", "run", str(path), "--output", str(run)] + (["--resume"] if resume else [])
    return subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_after_checkpoint(proc, run, seen: int, delay: float) -> bool:
    """Wait for a checkpoint newer than ``seen`` checkpoints-in-total, then SIGKILL after ``delay``."""
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in (run / "checkpoints").glob("step_*") if not p.name.endswith(".tmp")] \
            if (run / "checkpoints").is_dir() else []
        if len(done) > seen or (seen == 0 and done):
            time.sleep(delay)
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def test_killed_and_resumed_is_bitwise_equal(tmp_path):
    recipe = tiny_recipe({"max_steps": STEPS, "save_every": 4, "eval_every": 10, "keep_last": 3,
                          "log_every": 1}, size=300)
    path = write_recipe(tmp_path / "r.yaml", recipe)
    straight = seqattn("run", path, "--output", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]

    run, rng, kills = tmp_path / "killed", random.Random(7), 0
    proc = _start(path, run, resume=False)
    for attempt in range(6):
        if _kill_after_checkpoint(proc, run, seen=attempt % 2, delay=rng.uniform(0.0, 0.4)):
            kills += 1
            proc = _start(path, run, resume=True)
        else:
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert kills >= 2
    final = f"checkpoints/step_{STEPS:08d}"
    a = load_file(str(tmp_path / "straight" / final / "model.safetensors"))
    b = load_file(str(run / final / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    oa = torch.load(tmp_path / "straight" / final / "optimizer.pt", weights_only=True)
    ob = torch.load(run / final / "optimizer.pt", weights_only=True)
    for i in oa["state"]:
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(oa["state"][i][key], ob["state"][i][key])
    losses = lambda r: [m for m in (r / "metrics.jsonl").read_text().splitlines() if '"loss"' in m]  # noqa: E731
    assert [line.split('"tokens_per_s"')[0] for line in losses(run)] == \
           [line.split('"tokens_per_s"')[0] for line in losses(tmp_path / "straight")]
