"""Learning-rate schedules: pure functions of the step, so resuming needs only the step."""

from __future__ import annotations

import math


def lr_at(step: int, *, lr: float, schedule: str, warmup_steps: int, max_steps: int) -> float:
    """The learning rate for update number ``step`` (1-based)."""
    warm = max(warmup_steps, 0)
    if warm and step <= warm:
        return lr * step / warm
    if schedule == "inverse_sqrt":  # Vaswani et al.: peak at warm-up, then ~ 1/sqrt(step)
        return lr * math.sqrt(max(warm, 1) / step)
    if schedule == "constant":
        return lr
    progress = min(1.0, (step - warm) / max(1, max_steps - warm))
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * (1.0 - progress)  # linear
