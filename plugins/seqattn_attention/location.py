"""Location-aware attention (Chorowski et al. 2015): content plus a convolution over the
previous step's alignment, e = w^T tanh(W q + V k + U (F * alpha_{t-1}) + b)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.interfaces import AttentionScorer


class LocationAwareScorer(AttentionScorer):
    stateful = True

    def __init__(self, query_dim: int, key_dim: int, *, hidden: int | None = None, channels: int = 10,
                 kernel: int = 31) -> None:
        super().__init__()
        hidden = hidden or key_dim
        self.W = nn.Linear(query_dim, hidden, bias=False)
        self.V = nn.Linear(key_dim, hidden, bias=True)
        self.conv = nn.Conv1d(1, channels, kernel, padding=kernel // 2, bias=False)
        self.U = nn.Linear(channels, hidden, bias=False)
        self.w = nn.Linear(hidden, 1, bias=False)

    def forward(self, query, key, value, mask=None, causal=False, need_weights=False, dropout=0.0, state=None):
        b, h, t, _ = query.shape
        s = key.size(-2)
        keys = self.cached(state, "_keys", lambda: self.V(key))  # (B,H,S,A), once per source
        prev = state.get("alignment") if state is not None else None
        if prev is None:
            prev = query.new_zeros(b, h, s)  # (B,H,S)
        contexts, alignments = [], []
        for i in range(t):  # each step's alignment feeds the next: inherently sequential
            loc = self.conv(prev.reshape(b * h, 1, s)).view(b, h, -1, s).transpose(2, 3)  # (B*H,C,S) -> (B,H,S,C)
            e = self.w(torch.tanh(self.W(query[:, :, i]).unsqueeze(2) + keys + self.U(loc))).squeeze(-1)  # (B,H,S)
            if mask is not None:
                e = e.masked_fill(~mask[:, :, 0] if mask.dim() == 4 else ~mask, float("-inf"))
            prev = torch.softmax(e.float(), dim=-1).to(value.dtype)  # (B,H,S)
            alignments.append(prev)
            contexts.append(prev.unsqueeze(2) @ value)  # (B,H,1,S) @ (B,H,S,Dv) -> (B,H,1,Dv)
        if state is not None:
            state["alignment"] = prev
        weights = torch.stack(alignments, dim=2)  # (B,H,T,S)
        return torch.cat(contexts, dim=2), (weights if need_weights else None)
