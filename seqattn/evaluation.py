"""Evaluation helpers shared by tasks: every process takes every N-th batch of a split, and the
sums or outputs are combined across processes."""

from __future__ import annotations

import torch


def my_batches(task, split: str, max_tokens: int, accelerator) -> list:
    """This process's share of the split's (unshuffled) batches."""
    batches = task.batches(split, 0, 0, max_tokens, shuffle=False)
    return batches[accelerator.process_index:: accelerator.num_processes]


@torch.no_grad()
def mean_loss(task, model, split: str, batches: list, accelerator) -> float:
    """Loss per target token over every process's batches (no label smoothing)."""
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # loss sum, tokens
    for index in batches:
        batch = task.collate(split, index).to(accelerator.device)
        total += torch.tensor([float(task.loss(model, batch, 0.0)), batch.ntokens], dtype=torch.float64,
                              device=accelerator.device)
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1])


def gather_pairs(pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(example number, output) pairs from every process, in example order."""
    from accelerate.utils import gather_object

    return sorted(gather_object(pairs))
