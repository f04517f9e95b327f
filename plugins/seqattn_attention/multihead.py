"""A multi-head wrapper: projects queries, keys and values into ``heads`` subspaces, runs any
registered scorer in each, and projects the concatenation back (values are assumed to have
the keys' size, as in attention over encoder states)."""

from __future__ import annotations

from torch import Tensor, nn

from seqattn.interfaces import AttentionScorer
from seqattn.spec import Spec


class MultiHeadScorer(AttentionScorer):
    def __init__(self, query_dim: int, key_dim: int, *, heads: int = 4, head_dim: int | None = None,
                 scorer: Spec("attention") = "scaled_dot") -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim or max(1, key_dim // heads)
        inner = heads * self.head_dim
        self.inner = scorer.build(self.head_dim, self.head_dim)
        self.stateful, self.normalised, self.content = self.inner.stateful, self.inner.normalised, self.inner.content
        self.q, self.v = nn.Linear(query_dim, inner), nn.Linear(key_dim, inner)
        self.k = nn.Linear(key_dim, inner) if self.content else None  # positional scorers never read keys
        self.out = nn.Linear(inner, key_dim)

    def _split(self, x: Tensor) -> Tensor:
        b, g, n, _ = x.shape
        x = x.view(b, g, n, self.heads, self.head_dim).permute(0, 1, 3, 2, 4)  # (B,G,N,h*d) -> (B,G,h,N,d)
        return x.reshape(b, g * self.heads, n, self.head_dim)  # (B,G*h,N,d)

    def _project(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        b, g, s, _ = key.shape
        keys = self._split(self.k(key)) if self.k is not None else key.new_zeros(b, g * self.heads, s, 1)
        return keys, self._split(self.v(value))  # (B,G*h,S,d) each

    def forward(self, query, key, value, mask=None, causal=False, need_weights=False, dropout=0.0, state=None):
        b, g, t, _ = query.shape
        if mask is not None:
            mask = mask.repeat_interleave(self.heads, dim=1) if mask.size(1) > 1 else mask  # (B,G*h|1,T|1,S)
        keys, values = self.cached(state, "_heads", lambda: self._project(key, value))  # once per source
        context, weights = self.inner(self._split(self.q(query)), keys, values,
                                      mask=mask, causal=causal, need_weights=need_weights, dropout=dropout, state=state)
        context = context.view(b, g, self.heads, t, self.head_dim).permute(0, 1, 3, 2, 4)  # (B,G,T,h,d)
        context = self.out(context.reshape(b, g, t, -1))  # (B,G,T,h*d) -> (B,G,T,Dk)
        if weights is not None:
            weights = weights.view(b, g, self.heads, t, -1).mean(2)  # (B,G,h,T,S) -> (B,G,T,S): head average
        return context, weights
