"""Plot the alignment of a finished speech run on its first test utterances, and check it is
monotonic: attention weights for attention models, the Viterbi path for CTC.

    python benchmarks/plot_speech_alignment.py RUN_DIR OUT.png [--count 20]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from seqattn import checkpoint as ckpt
from seqattn import recipe as recipes
from seqattn.plot import is_monotonic, plot_alignment
from seqattn.train import final_weights


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("out")
    p.add_argument("--count", type=int, default=20, help="utterances checked for monotonicity")
    args = p.parse_args()
    run_dir = Path(args.run_dir)
    r = recipes.load(run_dir / "recipe.yaml")
    task = r.task.build()
    task.setup(run_dir, fit=True)
    model = task.build_model(r.model)
    ckpt.load_weights(model, final_weights(run_dir, r.train.final_model))
    model.eval()
    alignments = task.alignments(model, "test", np.arange(args.count), r.search, torch.device("cpu"))
    plot_alignment(alignments[0], Path(args.out), title=f"{run_dir.name}: " + " ".join(alignments[0].target))
    monotonic = [is_monotonic(a.weights) for a in alignments]
    print(json.dumps({"plotted": args.out, "monotonic": sum(monotonic), "of": len(monotonic)}))


if __name__ == "__main__":
    main()
