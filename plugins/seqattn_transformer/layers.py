"""Building blocks shared by the Transformer encoder and decoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqattn.dropout import Dropout, dropout
from seqattn.errors import SeqattnError
from seqattn.spec import ComponentSpec


class MultiHeadAttention(nn.Module):
    """Multi-head attention around any registered scorer; fused QKV (self) or KV (cross)."""

    def __init__(self, d_model: int, heads: int, scorer: ComponentSpec, dropout: float, cross: bool,
                 memory_dim: int | None = None) -> None:
        super().__init__()
        if d_model % heads:
            raise SeqattnError(f"model: d_model {d_model} is not divisible by heads {heads}")
        self.heads, self.head_dim, self.dropout = heads, d_model // heads, dropout
        if cross:
            self.q = nn.Linear(d_model, d_model)
            self.kv = nn.Linear(memory_dim or d_model, 2 * d_model)
        else:
            self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.scorer = scorer.build(self.head_dim, self.head_dim)

    def _heads(self, x: Tensor, parts: int) -> tuple[Tensor, ...]:
        b, n, _ = x.shape
        x = x.view(b, n, parts, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B,N,P*D) -> (P,B,H,N,Dh)
        return x.unbind(0)

    def _merge(self, context: Tensor) -> Tensor:
        b, _, n, _ = context.shape
        return self.out(context.transpose(1, 2).reshape(b, n, -1))  # (B,H,N,Dh) -> (B,N,D)

    def self_attend(self, x: Tensor, mask: Tensor | None = None, causal: bool = False,
                    cache: dict | None = None) -> Tensor:
        """x (B,T,D). With ``cache`` (incremental decoding) new keys/values are appended to it."""
        q, k, v = self._heads(self.qkv(x), 3)  # each (B,H,T,Dh)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)  # (B,H,t+T,Dh)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        context, _ = self.scorer(q, k, v, mask=mask, causal=causal, dropout=self._p())
        return self._merge(context)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B,S,Dm) -> keys, values (B,H,S,Dh) each; computed once per source."""
        return self._heads(self.kv(memory), 2)

    def cross_attend(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool = False,
                     state: dict | None = None) -> tuple[Tensor, Tensor | None]:
        """``state`` carries a stateful scorer's step-to-step memory during incremental decoding."""
        (q,) = self._heads(self.q(x), 1)  # (B,H,T,Dh)
        context, weights = self.scorer(q, k, v, mask=mask, need_weights=need_weights, dropout=self._p(), state=state)
        return self._merge(context), weights

    def _p(self) -> float:
        return self.dropout if self.training else 0.0


class FeedForward(nn.Module):
    """Linear -> activation -> dropout on the activation (fairseq's activation_dropout) -> Linear."""

    def __init__(self, d_model: int, ffn: int, activation_dropout: float, activation: str) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, ffn), nn.Linear(ffn, d_model)
        self.act = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.p = activation_dropout

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.fc1(x))  # (...,D) -> (...,F)
        if self.p > 0 and self.training:  # no mask is drawn when it is off
            h = dropout(h, self.p, True)
        return self.fc2(h)


class Embedding(nn.Module):
    """Token embedding * sqrt(D) plus sinusoidal or learned positions, then dropout."""

    def __init__(self, vocab_size: int, d_model: int, positions: str, max_positions: int, dropout: float) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.tokens.weight, 0.0, d_model**-0.5)
        self.scale = math.sqrt(d_model)
        self.learned = positions == "learned"
        if self.learned:
            self.positions = nn.Embedding(max_positions, d_model)
            nn.init.normal_(self.positions.weight, 0.0, d_model**-0.5)
        else:
            self.register_buffer("table", sinusoids(max_positions, d_model), persistent=False)
        self.max_positions = max_positions
        self.drop = Dropout(dropout)

    def forward(self, ids: Tensor, offset: int = 0) -> Tensor:
        """ids (B,T) -> (B,T,D); ``offset`` is the position of the first id (incremental decoding)."""
        t = ids.size(1)
        if offset + t > self.max_positions:
            raise SeqattnError(f"model: a sequence of {offset + t} positions exceeds max_positions {self.max_positions}; "
                               "raise max_positions or lower the task's length limits")
        pos = self.positions.weight[offset: offset + t] if self.learned else self.table[offset: offset + t]
        return self.drop(self.tokens(ids) * self.scale + pos)  # (B,T,D) + (T,D)


def sinusoids(n: int, d: int) -> Tensor:
    """(n, d) sinusoidal position table (sin on the first half of channels, cos on the second)."""
    half = d // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000.0) / max(half - 1, 1)))
    angles = torch.arange(n, dtype=torch.float).unsqueeze(1) * freq.unsqueeze(0)  # (n, half)
    table = torch.cat([angles.sin(), angles.cos()], dim=1)
    return nn.functional.pad(table, (0, d - 2 * half))


def init_linear(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
