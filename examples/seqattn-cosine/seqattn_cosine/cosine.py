import math

import torch
import torch.nn.functional as F
from torch import nn

from seqattn.interfaces import AttentionScorer


class CosineScorer(AttentionScorer):
    """e = tau * cos(q, k), with a learned temperature tau (kept positive through its log)."""

    def __init__(self, query_dim: int, key_dim: int, *, temperature: float = 10.0):
        super().__init__()
        if query_dim != key_dim:
            raise ValueError(f"cosine attention needs equal query and key sizes, got {query_dim} and {key_dim}")
        self.log_tau = nn.Parameter(torch.tensor(math.log(temperature)))

    def score(self, query, key):
        q, k = F.normalize(query, dim=-1), F.normalize(key, dim=-1)
        return self.log_tau.exp() * (q @ k.transpose(-2, -1))  # (B,H,T,D) @ (B,H,D,S) -> (B,H,T,S)
