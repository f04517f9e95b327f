"""Building blocks shared by the Transformer encoder and decoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqattn.dropout import Dropout, dropout
from seqattn.errors import SeqattnError
from seqattn.linear import Linear
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
            self.q = Linear(d_model, d_model)
            self.kv = Linear(memory_dim or d_model, 2 * d_model)
        else:
            self.qkv = Linear(d_model, 3 * d_model)
        self.out = Linear(d_model, d_model)
        self.scorer = scorer.build(self.head_dim, self.head_dim)

    def _heads(self, x: Tensor, parts: int) -> tuple[Tensor, ...]:
        """Views, no copy. Unbinding before transposing lets backward stack the parts' gradients
        straight into the (B,N,P*D) layout (permuting first cost one more copy of it per layer)."""
        b, n, _ = x.shape
        x = x.view(b, n, parts, self.heads, self.head_dim)  # (B,N,P*D) -> (B,N,P,H,Dh)
        return tuple(part.transpose(1, 2) for part in x.unbind(2))  # P x (B,H,N,Dh)

    def _merge(self, context: Tensor) -> Tensor:
        b, _, n, _ = context.shape
        return self.out(context.transpose(1, 2).reshape(b, n, -1))  # (B,H,N,Dh) -> (B,N,D)

    def self_attend(self, x: Tensor, mask: Tensor | None = None, causal: bool = False,
                    cache: dict | None = None) -> Tensor:
        """x (B,T,D). With ``cache`` (incremental decoding) new keys/values are appended to it."""
        q, k, v = self._heads(self.qkv(x), 3)  # each (B,H,T,Dh)
        if cache is not None:
            k, v = append_kv(cache, k, v)  # (B,H,t+T,Dh) each
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


def append_kv(cache: dict, k: Tensor, v: Tensor, grow: int = 32) -> tuple[Tensor, Tensor]:
    """Write ``k``, ``v`` (N,H,T,Dh) after the ``cache["len"]`` cached positions; return all keys and
    values (N,H,t+T,Dh) as views. The buffers are time-major (capacity,N,H,Dh) and grow ``grow``
    positions at a time, so a step writes in place (no concatenation) and :func:`reorder_kv` copies
    only the filled positions."""
    n, h, steps, dh = k.shape
    t = cache.get("len", 0)
    if "k" not in cache or t + steps > cache["k"].size(0):
        for name in ("k", "v"):
            buf = k.new_empty(t + steps + grow, n, h, dh)
            if name in cache:
                buf[:t] = cache[name][:t]
            cache[name] = buf
    cache["k"][t: t + steps] = k.permute(2, 0, 1, 3)  # (N,H,T,Dh) -> (T,N,H,Dh)
    cache["v"][t: t + steps] = v.permute(2, 0, 1, 3)
    cache["len"] = t + steps
    return cache["k"][: t + steps].permute(1, 2, 0, 3), cache["v"][: t + steps].permute(1, 2, 0, 3)  # (N,H,t,Dh)


def reorder_kv(cache: dict, index: Tensor) -> dict:
    """The cache of rows ``index`` (N',). Beam reordering (N' == N) is done in place and moves
    only the rows whose source is another row (beam search keeps most beams in their parent's
    slot): their filled positions are gathered first, then written, so any index is safe. This
    consumes ``cache``. Anything else (beam expansion) gathers into new buffers."""
    t = cache.get("len", 0)
    if t == 0:
        return {}
    cap, n, h, dh = cache["k"].shape
    steps = torch.arange(t, device=index.device)[:, None] * n  # (t,1): first flat row of each position
    if index.numel() != n:
        rows = (steps + index[None, :]).view(-1)  # (t*N',) into (t*N)
        out: dict = {"len": t}
        for name in ("k", "v"):
            out[name] = cache[name].new_empty(cap, index.numel(), h, dh)
            torch.index_select(cache[name][:t].view(t * n, h * dh), 0, rows, out=out[name][:t].view(-1, h * dh))
        return out
    moved = (index != torch.arange(n, device=index.device)).nonzero().squeeze(1)  # (M,) rows to overwrite
    if moved.numel():
        src, dst = (steps + index[moved][None, :]).view(-1), (steps + moved[None, :]).view(-1)  # (t*M,)
        for name in ("k", "v"):
            flat = cache[name][:t].view(t * n, h * dh)
            flat.index_copy_(0, dst, flat.index_select(0, src))  # (t*M,H*Dh)
    return cache


class FeedForward(nn.Module):
    """Linear -> activation -> dropout on the activation (fairseq's activation_dropout) -> Linear."""

    def __init__(self, d_model: int, ffn: int, activation_dropout: float, activation: str) -> None:
        super().__init__()
        self.fc1, self.fc2 = Linear(d_model, ffn), Linear(ffn, d_model)
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
        if isinstance(m, (nn.Linear, Linear)):  # xavier's bound is symmetric in fan-in and fan-out
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
