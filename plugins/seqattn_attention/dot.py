"""Dot-product attention (Luong et al. 2015 "dot"): e = q . k."""

from __future__ import annotations

from torch import Tensor

from seqattn.errors import SeqattnError
from seqattn.interfaces import AttentionScorer


class DotScorer(AttentionScorer):
    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        if query_dim != key_dim:
            raise SeqattnError(
                f"dot attention needs equal query and key sizes, got query {query_dim} and key {key_dim}; "
                "use 'bilinear' or 'additive' for different sizes"
            )

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        return query @ key.transpose(-2, -1)  # (B,H,T,D) @ (B,H,D,S) -> (B,H,T,S)
