"""The core's own recipe sections: ``train`` and ``search``, and the data-source block tasks use.

Each is a keyword-only dataclass: its field defaults are the only defaults, and the recipe
validator checks keys and types against the fields exactly as it does for plugin factories.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from seqattn.errors import SeqattnError
from seqattn.spec import Spec


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    seed: int = 1
    max_steps: int = 100_000
    max_epochs: int | None = None
    max_minutes: float | None = None  # wall-clock budget; stops after the step that crosses it
    max_tokens: int = 4096  # tokens (padding included) per micro-batch per process
    accumulate: int = 1  # micro-batches per update on each process
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: Literal["inverse_sqrt", "cosine", "linear", "constant"] = "inverse_sqrt"
    warmup_steps: int = 4000
    clip_norm: float | None = 1.0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    compile: str | None = None  # a torch.compile backend for the training forward/backward, e.g. "inductor"
    threads: int | None = None  # torch intra-op threads on the CPU; None leaves torch's default
    log_every: int = 100
    log_with: list[str] = field(default_factory=list)  # accelerate trackers: tensorboard, wandb, ...
    save_every: int = 1000
    keep_last: int = 5
    eval_every: int = 1000
    eval_split: str = "valid"
    eval_metric: str = "loss"  # "loss" or a metric the task's evaluate() returns, e.g. "bleu"
    patience: int | None = None  # evaluations without improvement before stopping early
    average_last: int = 0  # average the weights of the last N checkpoints at the end
    final_model: Literal["best", "last", "average"] = "best"
    test_splits: list[str] = field(default_factory=lambda: ["test"])
    max_bad_steps: int = 5  # consecutive non-finite updates before the run stops

    def check(self, path: str, check_files: bool) -> None:
        positive = {"max_steps": self.max_steps, "max_tokens": self.max_tokens, "accumulate": self.accumulate,
                    "save_every": self.save_every, "eval_every": self.eval_every, "log_every": self.log_every,
                    "keep_last": self.keep_last, "max_bad_steps": self.max_bad_steps}
        for key, value in positive.items():
            if value < 1:
                raise SeqattnError(f"{path}.{key}: expected a positive integer, got {value}")
        if len(self.betas) != 2:
            raise SeqattnError(f"{path}.betas: expected a list of two numbers, got {self.betas}")
        if self.final_model == "average" and self.average_last < 2:
            raise SeqattnError(f"{path}.average_last: final_model 'average' needs average_last >= 2")
        if self.compile is not None:
            import torch

            known = torch.compiler.list_backends(exclude_tags=())
            if self.compile not in known:
                raise SeqattnError(f"{path}.compile: unknown torch.compile backend {self.compile!r}; known: "
                                   f"{', '.join(sorted(known))}")
        if self.average_last > self.keep_last:
            raise SeqattnError(f"{path}.average_last: cannot exceed keep_last ({self.keep_last})")


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    beam: int = 4
    length_penalty: float = 0.6  # GNMT: score / ((5 + length) / 6) ** alpha; 0 disables
    max_len_a: float = 1.2  # hypotheses stop at max_len_a * source_length + max_len_b tokens
    max_len_b: int = 10
    min_len: int = 1  # no EOS before this many tokens (0 allows empty outputs)
    n_best: int = 1
    max_tokens: int = 8000  # source tokens per decoding batch

    def check(self, path: str, check_files: bool) -> None:
        if self.beam < 1:
            raise SeqattnError(f"{path}.beam: expected a positive integer, got {self.beam}")
        if not 1 <= self.n_best <= self.beam:
            raise SeqattnError(f"{path}.n_best: expected 1..beam ({self.beam}), got {self.n_best}")


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """Where one split comes from: a hub dataset, local files, or a registered corpus generator.

    ``files`` is a path read with ``datasets`` by its ending (``.jsonl``/``.json``, ``.tsv``,
    ``.csv``, ``.parquet``); a path containing ``{lang}`` names line-aligned plain-text files, one
    per language. ``hub`` is a dataset id for ``datasets.load_dataset`` with ``config`` and
    ``split``. ``corpus`` is a registered generator (its keys, e.g. ``size`` and ``seed``, are
    the generator's).
    """

    hub: str | None = None
    config: str | None = None
    split: str | None = None
    files: str | None = None
    corpus: Spec("corpus") | None = None
    limit: int | None = None  # keep only the first N rows

    def check(self, path: str, check_files: bool) -> None:
        given = [k for k in ("hub", "files", "corpus") if getattr(self, k) is not None]
        if len(given) != 1:
            raise SeqattnError(f"{path}: expected exactly one of hub, files, corpus; got {given or 'none'}")
        if check_files and self.files is not None:
            if "{lang}" in self.files:
                if not glob.glob(self.files.replace("{lang}", "*")):
                    raise SeqattnError(f"{path}.files: no file matches {self.files}")
            elif not Path(self.files).exists():
                raise SeqattnError(f"{path}.files: file not found: {self.files}")
