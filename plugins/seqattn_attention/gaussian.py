"""Gaussian-mixture location attention (Graves 2013, "Generating sequences with RNNs" §5.1).

phi(t, u) = sum_k alpha_k exp(-beta_k (kappa_k - u)^2), with (alpha^, beta^, kappa^) predicted
from the query, alpha = exp(alpha^), beta = exp(beta^), kappa_t = kappa_{t-1} + exp(kappa^):
the mixture only moves forward, so the alignment is monotonic by construction. The weights
depend on key positions, not key content, and are not normalised (as in the paper).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.interfaces import AttentionScorer


class GaussianScorer(AttentionScorer):
    stateful = True
    normalised = False
    content = False

    def __init__(self, query_dim: int, key_dim: int, *, mixtures: int = 5, step_scale: float = 1.0) -> None:
        super().__init__()
        self.mixtures = mixtures
        self.step_scale = step_scale  # kappa moves exp(kappa^) * step_scale key positions per step
        self.params = nn.Linear(query_dim, 3 * mixtures)
        with torch.no_grad():  # start near one key per step with a width of a few keys
            self.params.weight.mul_(0.1)
            self.params.bias.copy_(torch.cat([torch.zeros(mixtures), torch.full((mixtures,), -1.0),
                                              torch.zeros(mixtures)]))

    def _previous(self, state: dict | None, query: Tensor) -> Tensor:
        """kappa after the previous step (B,H,K): from the state, or zeros at the start."""
        if state is not None and "kappa" in state:
            return state["kappa"]
        return query.new_zeros(query.size(0), query.size(1), self.mixtures, dtype=torch.float)

    def forward(self, query, key, value, mask=None, causal=False, need_weights=False, dropout=0.0, state=None):
        a_hat, b_hat, k_hat = self.params(query).float().chunk(3, dim=-1)  # (B,H,T,K) each
        alpha, beta = a_hat.exp(), b_hat.clamp(max=10).exp()
        start = self._previous(state, query)  # (B,H,K)
        kappa = start.unsqueeze(2) + (k_hat.clamp(max=10).exp() * self.step_scale).cumsum(2)  # (B,H,T,K)
        if state is not None:
            state["kappa"] = kappa[:, :, -1]
        u = torch.arange(key.size(-2), device=key.device, dtype=torch.float)  # (S,)
        dist = (kappa.unsqueeze(-1) - u).square()  # (B,H,T,K,1) - (S,) -> (B,H,T,K,S)
        phi = (alpha.unsqueeze(-1) * torch.exp(-beta.unsqueeze(-1) * dist)).sum(-2)  # (B,H,T,S)
        if mask is not None:
            phi = phi.masked_fill(~mask, 0.0)
        weights = phi.to(value.dtype)
        context = weights @ value  # (B,H,T,S) @ (B,H,S,Dv) -> (B,H,T,Dv)
        return context, (weights if need_weights else None)
