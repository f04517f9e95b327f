"""Alignment heatmaps (matplotlib, headless)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Alignment:
    source: list[str]  # column labels (source pieces or frame labels)
    target: list[str]  # row labels (output pieces, EOS included)
    weights: np.ndarray  # (len(target), len(source))


def plot_alignment(alignment: Alignment, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = alignment.weights.shape
    fig, ax = plt.subplots(figsize=(min(14.0, max(4.0, 0.28 * cols + 2)), min(10.0, max(3.0, 0.28 * rows + 1.5))))
    ax.imshow(alignment.weights, aspect="auto", cmap="viridis", interpolation="nearest")
    label_cols = cols <= 80
    ax.set_xticks(range(cols) if label_cols else [])
    if label_cols:
        ax.set_xticklabels(alignment.source, rotation=90, fontsize=8)
    ax.set_yticks(range(rows))
    ax.set_yticklabels(alignment.target, fontsize=8)
    ax.set_xlabel("source" if label_cols else f"source ({cols} positions)")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def is_monotonic(weights: np.ndarray, slack: int = 0) -> bool:
    """True when each row's peak position never moves left by more than ``slack``."""
    peaks = weights.argmax(1)
    return bool((np.diff(peaks) >= -slack).all())
