"""Connectionist temporal classification (Graves et al. 2006) as a hard monotonic alignment:
the loss (``torch.nn.functional.ctc_loss``), greedy and prefix beam search decoding, and the
Viterbi (forced) alignment for inspection. The blank is id 0, the tokenizers' padding id."""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.spec import Spec

BLANK = 0


class CTCModel(nn.Module):
    """Any encoder plus a linear layer to the vocabulary (blank included): no decoder."""

    def __init__(self, input_dim: int, vocab_size: int, *, encoder: Spec("encoder")) -> None:
        super().__init__()
        self.encoder = encoder.build(input_dim)
        self.head = nn.Linear(self.encoder.out_dim, vocab_size)

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """-> frame log-probabilities (B,S',V) and their mask (B,S')."""
        hidden, mask = self.encoder(src, src_mask)
        return torch.log_softmax(self.head(hidden).float(), dim=-1), mask


def ctc_loss(log_probs: Tensor, mask: Tensor, targets: Tensor, target_mask: Tensor) -> Tensor:
    """Summed CTC loss; targets (B,L) padded, target_mask (B,L)."""
    return F.ctc_loss(log_probs.transpose(0, 1), targets, mask.sum(1), target_mask.sum(1), blank=BLANK,
                      reduction="sum", zero_infinity=True)  # (B,S,V) -> (S,B,V)


def greedy(log_probs: Tensor, mask: Tensor) -> list[list[int]]:
    """Best label per frame, repeats collapsed, blanks removed."""
    best = log_probs.argmax(-1).masked_fill(~mask, BLANK)  # (B,S)
    keep = (best != BLANK) & torch.cat([torch.ones_like(best[:, :1], dtype=torch.bool), best[:, 1:] != best[:, :-1]], 1)
    return [row[k].tolist() for row, k in zip(best, keep)]


def prefix_beam_search(log_probs: Tensor, beam: int = 8) -> list[tuple[list[int], float]]:
    """CTC prefix beam search over one utterance's (S,V) log-probabilities; n-best with scores."""
    lp = log_probs.tolist()
    beams = {(): (0.0, -math.inf)}  # prefix -> (log p ending in blank, log p ending in non-blank)
    for frame in lp:
        nxt: dict = defaultdict(lambda: (-math.inf, -math.inf))
        top = sorted(range(len(frame)), key=lambda v: -frame[v])[: beam + 1]
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            b, nb = nxt[prefix]
            nxt[prefix] = (_lse(b, total + frame[BLANK]), nb)
            for v in top:
                if v == BLANK:
                    continue
                ext = prefix + (v,)
                b, nb = nxt[ext]
                if prefix and prefix[-1] == v:  # a repeat needs a blank in between to count twice
                    nxt[ext] = (b, _lse(nb, pb + frame[v]))
                    b0, nb0 = nxt[prefix]
                    nxt[prefix] = (b0, _lse(nb0, pnb + frame[v]))
                else:
                    nxt[ext] = (b, _lse(nb, total + frame[v]))
        beams = dict(sorted(nxt.items(), key=lambda kv: -_lse(*kv[1]))[:beam])
    return [(list(p), _lse(*s)) for p, s in sorted(beams.items(), key=lambda kv: -_lse(*kv[1]))]


def viterbi(log_probs: Tensor, target: list[int]) -> list[int]:
    """The most likely frame-by-frame path (S,) that reads ``target``: the forced alignment.
    Each entry is the label of that frame (BLANK or a target token)."""
    ext = [BLANK]
    for t in target:
        ext += [t, BLANK]  # (2L+1) states
    S, n = log_probs.size(0), len(ext)
    lp = log_probs[:, ext]  # (S, 2L+1)
    score = torch.full((S, n), -math.inf)
    back = torch.zeros((S, n), dtype=torch.long)
    score[0, 0] = lp[0, 0]
    if n > 1:
        score[0, 1] = lp[0, 1]
    allowed_skip = torch.tensor([i >= 2 and ext[i] != BLANK and ext[i] != ext[i - 2] for i in range(n)])
    for s in range(1, S):
        stay = score[s - 1]
        move = torch.cat([torch.tensor([-math.inf]), score[s - 1, :-1]])
        skip = torch.cat([torch.tensor([-math.inf, -math.inf]), score[s - 1, :-2]]).masked_fill(~allowed_skip, -math.inf)
        options = torch.stack([stay, move, skip])  # (3, 2L+1)
        best, arg = options.max(0)
        score[s], back[s] = best + lp[s], arg
    state = n - 1 if n == 1 or score[-1, n - 1] >= score[-1, n - 2] else n - 2
    path = []
    for s in range(S - 1, -1, -1):
        path.append(ext[state])
        state -= int(back[s, state])
    return path[::-1]


def _lse(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))
