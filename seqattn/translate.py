"""Load a finished run directory for inference (``seqattn translate`` and the Python API)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from seqattn import checkpoint as ckpt
from seqattn import recipe as recipes
from seqattn.plot import Alignment


@dataclass
class Translator:
    task: object
    model: torch.nn.Module
    search: object
    device: torch.device

    def translate(self, sentences: list[str]) -> list[list[str]]:
        """n-best detokenized outputs per input sentence."""
        return self.task.translate(self.model, sentences, self.search, self.device)

    def align(self, sentences: list[str], hypotheses: list[str] | None = None) -> list[Alignment]:
        """Cross-attention matrices (output x source) of each sentence's best translation (or of
        the given ``hypotheses``), recomputed only for these sentences."""
        if hypotheses is None:
            hypotheses = [n[0] for n in self.translate(sentences)]
        return self.task.alignments(self.model, sentences, hypotheses, self.device)


def load_run(run_dir: Path, overrides: list[str] = ()) -> Translator:
    """The run's task, tokenizers and its final weights (averaged, best or last, as trained)."""
    from seqattn.train import final_weights

    r = recipes.load(run_dir / "recipe.yaml", overrides, check_files=False)
    task = r.task.build()
    task.setup(run_dir, fit=False)
    model = task.build_model(r.model)
    ckpt.load_weights(model, final_weights(run_dir, r.train.final_model))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return Translator(task, model.to(device).eval(), r.search, device)
