"""Two CPU processes (gloo) under torchrun: identical parameters, global batch = sum of ranks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from helpers import ENV, ROOT, tiny_recipe, write_recipe


def test_two_processes_train_in_lockstep(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe({"max_steps": 6, "accumulate": 2, "eval_every": 3}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "_ddp_train.py"), str(path), str(tmp_path)]
    out = subprocess.run(cmd, env={**ENV, "ACCELERATE_USE_CPU": "true"}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f"records_{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2  # really two processes, not one
    assert len(r0["records"]) == len(r1["records"]) == 6
    for a, b in zip(r0["records"], r1["records"]):
        assert a["step"] == b["step"]
        assert a["global"] == b["global"] == a["local"] + b["local"]
        assert not set(a["ids"]) & set(b["ids"])  # each rank trains on its own examples
    p0, p1 = (load_file(str(tmp_path / f"params_{r}.safetensors")) for r in (0, 1))
    assert p0.keys() == p1.keys()
    for k in p0:
        assert (p0[k] == p1[k]).all(), k
    assert (Path(tmp_path) / "run" / "results.json").is_file()
