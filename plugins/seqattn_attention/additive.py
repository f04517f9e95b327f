"""Additive attention (Bahdanau et al. 2015): e = v^T tanh(W q + U k)."""

from __future__ import annotations

from torch import Tensor, nn

from seqattn.interfaces import AttentionScorer


class AdditiveScorer(AttentionScorer):
    def __init__(self, query_dim: int, key_dim: int, *, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or key_dim
        self.W = nn.Linear(query_dim, hidden, bias=False)
        self.U = nn.Linear(key_dim, hidden, bias=True)
        self.v = nn.Linear(hidden, 1, bias=False)

    def project_keys(self, key: Tensor) -> Tensor:
        return self.U(key)  # (B,H,S,Dk) -> (B,H,S,A), once per source while decoding

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        q = self.W(query).unsqueeze(-2)  # (B,H,T,A) -> (B,H,T,1,A)
        return self.v((q + key.unsqueeze(-3)).tanh()).squeeze(-1)  # + (B,H,1,S,A) -> (B,H,T,S,A) -> (B,H,T,S)


