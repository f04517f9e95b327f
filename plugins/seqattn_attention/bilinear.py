"""Bilinear attention (Luong et al. 2015 "general"): e = q^T W k."""

from __future__ import annotations

from torch import Tensor, nn

from seqattn.interfaces import AttentionScorer


class BilinearScorer(AttentionScorer):
    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.W = nn.Linear(key_dim, query_dim, bias=False)

    def project_keys(self, key: Tensor) -> Tensor:
        return self.W(key)  # (B,H,S,Dk) -> (B,H,S,Dq), once per source while decoding

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        return query @ key.transpose(-2, -1)  # (B,H,T,Dq) @ (B,H,Dq,S) -> (B,H,T,S)
