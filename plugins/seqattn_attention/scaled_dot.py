"""Scaled dot-product attention (Vaswani et al. 2017): e = q . k / sqrt(d), fused when possible."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from seqattn.errors import SeqattnError
from seqattn.interfaces import AttentionScorer, causal_mask


class ScaledDotScorer(AttentionScorer):
    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        if query_dim != key_dim:
            raise SeqattnError(f"scaled_dot attention needs equal query and key sizes, got {query_dim} and {key_dim}")
        self.scale = 1.0 / math.sqrt(key_dim)

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        return (query @ key.transpose(-2, -1)) * self.scale  # (B,H,T,D) @ (B,H,D,S) -> (B,H,T,S)

    def forward(self, query, key, value, mask=None, causal=False, need_weights=False, dropout=0.0, state=None):
        if need_weights:  # the weights are asked for: take the generic path
            return super().forward(query, key, value, mask, causal, need_weights, dropout)
        t, s = query.size(-2), key.size(-2)
        is_causal = causal and mask is None and t == s
        if causal and not is_causal:
            keep = causal_mask(t, s, query.device)
            mask = keep if mask is None else mask & keep
        context = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=dropout if self.training else 0.0, is_causal=is_causal
        )  # (B,H,T,Dv)
        return context, None
