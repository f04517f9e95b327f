"""CTC alignment as an attention scorer: hard-monotonic attention from the CTC forward algorithm.

Connectionist temporal classification (Graves et al. 2006) reads a label sequence off frames:
each frame is *blank* or one of the labels, a label may last several frames, and labels come
in order. Here the labels are the decoder's queries: query ``t`` stands for output token ``t``.
For key frame ``s`` the scorer rates "frame ``s`` shows label ``t``" against "frame ``s`` is
blank" with ``e(t,s) = q_t W k_s / sqrt(Dq)`` and a blank logit ``b(s) = w k_s + c``, i.e.
``p(t,s) = sigmoid(e(t,s) - b(s))``, and runs the CTC forward recursion over frames:

    R_{t-1}(s)  probability that labels 0..t-1 are read by frame s (R_{-1}(-1) = 1),
    enter_t(s)  = p(t,s) R_{t-1}(s-1)               label t starts at frame s,
    label_t(s)  = p(t,s) (label_t(s-1) + R_{t-1}(s-1))   frame s shows label t,
    blank_t(s)  = (1 - p(t,s)) (blank_t(s-1) + label_t(s-1)),
    R_t(s)      = label_t(s) + blank_t(s).

The weights of query ``t`` are ``enter_t`` normalised over frames: where label ``t`` begins, given
the labels before it (the CTC *prefix* probability, as in CTC prefix scoring, so step-by-step
decoding equals the full call). The alignment is monotonic in expectation and sharpens into
the Viterbi path as training makes ``p`` confident. A label that cannot fit (more labels than
frames) attends to the last frame. The state carried between decoder steps is ``R_{t-1}``.

Each recursion over frames is a first-order linear recurrence ``x_s = a_s x_{s-1} + c_s``, solved
for all frames at once in log space with a cumulative sum and ``logcumsumexp`` (float64, with a
finite floor instead of -inf so no NaN reaches the gradients); only the loop over labels remains.
For the CTC *loss* over a vocabulary (an encoder without a decoder, or joint CTC/attention) see
the ``ctc`` model in the speech plugin; this scorer brings the same alignment to any decoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.interfaces import AttentionScorer

NEG = -1e30  # log(0), kept finite
MASKED = -1e4  # log p(label) on padding frames: exp() is exactly 0, and cumulative sums stay exact


def linear_recurrence(log_a: Tensor, log_c: Tensor) -> Tensor:
    """log x_s for x_s = a_s x_{s-1} + c_s, x_{-1} = 0, over the last dimension (log space)."""
    cum = log_a.cumsum(-1)  # log prod_{i<=s} a_i
    return (cum + torch.logcumsumexp(log_c - cum, dim=-1)).clamp(min=NEG)


def shift_frames(x: Tensor, first: float) -> Tensor:
    """x_{s-1} over the last dimension, with ``first`` at s = 0: (...,S) -> (...,S)."""
    return torch.cat([torch.full_like(x[..., :1], first), x[..., :-1]], -1)


class CTCScorer(AttentionScorer):
    stateful = True

    def __init__(self, query_dim: int, key_dim: int, *, blank_bias: float = 0.0) -> None:
        super().__init__()
        self.label = nn.Linear(key_dim, query_dim, bias=False)  # W: e(t,s) = q_t . W k_s / sqrt(Dq)
        self.blank = nn.Linear(key_dim, 1)  # b(s) = w . k_s + c
        with torch.no_grad():
            self.blank.bias.fill_(blank_bias)
        self.scale = 1.0 / math.sqrt(query_dim)

    def _log_probs(self, query: Tensor, key: Tensor, keep: Tensor, state: dict | None) -> tuple[Tensor, Tensor]:
        """log p(t,s) and log (1 - p(t,s)), (B,H,T,S) in float64; masked frames are blank."""
        labels, blank = self.cached(state, "_keys", lambda: (self.label(key).transpose(-1, -2),  # (B,H,Dq,S)
                                                             self.blank(key).squeeze(-1).double().unsqueeze(-2)))  # (B,H,1,S)
        x = (query @ labels).double() * self.scale - blank  # (B,H,T,Dq) @ (B,H,Dq,S) -> (B,H,T,S)
        log_label = F.logsigmoid(x).masked_fill(~keep, MASKED)
        log_blank = F.logsigmoid(-x).masked_fill(~keep, 0.0)
        return log_label, log_blank

    def _step(self, log_label: Tensor, log_blank: Tensor, ready: Tensor) -> tuple[Tensor, Tensor]:
        """One label: (B,H,S) log-probabilities and R_{t-1} over frames -1..S-1 (B,H,S+1)
        -> (log enter_t (B,H,S), R_t (B,H,S+1))."""
        enter = (log_label + ready[..., :-1]).clamp(min=NEG)  # p(t,s) R_{t-1}(s-1)
        label = linear_recurrence(log_label, enter)
        blank = linear_recurrence(log_blank, (log_blank + shift_frames(label, NEG)).clamp(min=NEG))  # label_t(s-1)
        start = torch.full_like(ready[..., :1], NEG)  # a label was read, so "nothing read by frame -1" is impossible
        return enter, torch.cat([start, torch.logaddexp(label, blank)], -1)

    def forward(self, query, key, value, mask=None, causal=False, need_weights=False, dropout=0.0, state=None):
        b, h, t, _ = query.shape
        s = key.size(-2)
        keep = torch.ones(b, h, t, s, dtype=torch.bool, device=key.device)
        if mask is not None:
            keep = keep & mask  # (B,H,T,S)
        log_label, log_blank = self._log_probs(query, key, keep, state)
        ready = state.get("ready") if state is not None else None
        if ready is None:  # before the first label: R_{-1}(-1) = 1, R_{-1}(s) = blanks all along (label 0's view)
            first = log_blank[:, :, 0].cumsum(-1).clamp(min=NEG)  # (B,H,S)
            ready = torch.cat([first.new_zeros(b, h, 1), first], -1)  # (B,H,S+1)
        enters = []
        for i in range(t):  # each label starts where the previous ones left off
            enter, ready = self._step(log_label[:, :, i], log_blank[:, :, i], ready)
            enters.append(enter)
        if state is not None:
            state["ready"] = ready
        enter = torch.stack(enters, dim=2)  # (B,H,T,S)
        weights = self._normalise(enter, keep).to(value.dtype)
        context = weights @ value  # (B,H,T,S) @ (B,H,S,Dv) -> (B,H,T,Dv)
        return context, (weights if need_weights else None)

    @staticmethod
    def _normalise(enter: Tensor, keep: Tensor) -> Tensor:
        """Softmax over frames; a label with no possible start attends to the last real frame."""
        last = keep.long().cumsum(-1).eq(keep.sum(-1, keepdim=True)) & keep  # the last True in each row
        impossible = (enter.masked_fill(~keep, NEG) <= NEG / 2).all(-1, keepdim=True)  # (B,H,T,1)
        logits = torch.where(impossible, torch.where(last, 0.0, NEG), enter).masked_fill(~keep, float("-inf"))
        return torch.softmax(logits, dim=-1)
