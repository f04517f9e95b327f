"""Token-count batching shared by every task: length-bucketed, padding-aware, seeded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """One sequence-to-sequence batch; ``src`` is (B,S) ids or (B,S,F) features."""

    src: torch.Tensor  # (B,S) or (B,S,F), right-padded
    src_mask: torch.Tensor  # (B,S) True = real position
    tgt_in: torch.Tensor  # (B,T) BOS + target
    tgt_out: torch.Tensor  # (B,T) target + EOS, padded with the pad id
    ntokens: int  # real target tokens (what the loss counts)
    index: np.ndarray  # (B,) example numbers within the split

    def to(self, device) -> "Batch":
        return Batch(self.src.to(device), self.src_mask.to(device), self.tgt_in.to(device), self.tgt_out.to(device),
                     self.ntokens, self.index)


class Ragged:
    """Integer sequences stored flat (CSR), so batches are padded without Python loops."""

    def __init__(self, seqs: list[list[int]], append: int | None = None) -> None:
        extra = 0 if append is None else 1
        self.lengths = np.array([len(s) + extra for s in seqs], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        tail = [] if append is None else [append]
        self.flat = np.fromiter((t for s in seqs for t in (*s, *tail)), dtype=np.int64, count=int(self.lengths.sum()))

    def pad(self, index: np.ndarray, pad: int, lead: int | None = None) -> np.ndarray:
        """(B, L) right-padded rows for ``index``; ``lead`` prepends one token to each row."""
        shift = 0 if lead is None else 1
        lens = self.lengths[index] + shift
        width = int(lens.max())
        cols = np.arange(width)[None, :] - shift  # (1, L)
        pos = np.clip(self.offsets[index][:, None] + cols, 0, max(len(self.flat) - 1, 0))  # (B, L)
        out = np.where(cols < lens[:, None] - shift, self.flat[pos] if len(self.flat) else pad, pad)
        if lead is not None:
            out[:, 0] = lead
        return out

    def teacher_forcing(self, index: np.ndarray, pad: int, bos: int, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder input (B,T) = BOS + target with its EOS dropped, and output (B,T) = target + EOS,
        for EOS-terminated rows; both padded with ``pad``."""
        tgt_out = torch.from_numpy(self.pad(index, pad))
        tgt_in = torch.from_numpy(self.pad(index, pad, lead=bos)[:, :-1])  # (B,T+1) -> (B,T)
        return tgt_in.masked_fill(tgt_in == eos, pad), tgt_out


def token_batches(sizes: np.ndarray, max_tokens: int, seed: int = 0, epoch: int = 0,
                  shuffle: bool = True) -> list[np.ndarray]:
    """Index batches whose padded size (count x longest) fits ``max_tokens``.

    Examples are sorted by size (ties in a random order from ``(seed, epoch)``) so batches hold
    similar lengths and padding stays small; with ``shuffle`` the batch order is shuffled too.
    Without it the order is the sorted one (evaluation)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(sizes)) if shuffle else np.arange(len(sizes))
    order = order[np.argsort(sizes[order], kind="stable")]
    batches = list(chunks(order, sizes, max_tokens))
    if shuffle:
        rng.shuffle(batches)
    return batches


def chunks(order: np.ndarray, sizes: np.ndarray, max_tokens: int):
    """Consecutive runs of ``order`` whose padded size (count x longest) fits ``max_tokens``."""
    start, longest = 0, 0
    for i, n in enumerate(order):
        longest = max(longest, int(sizes[n]))
        if (i + 1 - start) * longest > max_tokens and i > start:
            yield order[start:i]
            start, longest = i, int(sizes[n])
    if start < len(order):
        yield order[start:]
