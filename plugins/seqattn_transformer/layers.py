"""Building blocks shared by the Transformer encoder and decoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqattn.buffer import ReusableBuffer
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

    def self_attend(self, x: Tensor, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """x (B,T,D) -> (B,T,D)."""
        q, k, v = self._heads(self.qkv(x), 3)  # each (B,H,T,Dh)
        context, _ = self.scorer(q, k, v, mask=mask, causal=causal, dropout=self._p())
        return self._merge(context)

    def step_self(self, x: Tensor, cache: KVCache, layer: int) -> Tensor:
        """Incremental decoding: one new position of N rows, x (N,D) -> (N,D); its key and value
        join the earlier ones in ``cache``, at ``layer``."""
        n = x.size(0)
        qkv = self.qkv(x).view(n, 3, self.heads, self.head_dim)  # (N,3D) -> (N,3,H,Dh)
        k, v = cache.append(layer, qkv[:, 1:])  # (N,H,t,Dh) each
        context, _ = self.scorer(qkv[:, 0].unsqueeze(2), k, v, dropout=self._p())  # (N,H,1,Dh)
        return self.out(context.reshape(n, -1))  # (N,H,1,Dh) -> (N,D)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B,S,Dm) -> keys, values (B,H,S,Dh) each; computed once per source."""
        return self._heads(self.kv(memory), 2)

    def cross_attend(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
                     need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (B,T,D) against keys/values (B,H,S,Dh) -> (B,T,D) and, if asked, weights (B,H,T,S);
        a stateful scorer treats the T queries as consecutive steps from the start."""
        (q,) = self._heads(self.q(x), 1)  # (B,H,T,Dh)
        context, weights = self.scorer(q, k, v, mask=mask, need_weights=need_weights, dropout=self._p())
        return self._merge(context), weights

    def step_cross(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, state: dict | None,
                   group: int) -> Tensor:
        """Incremental decoding: x (N,D) -> (N,D) against keys/values (N/g,H,S,Dh) stored once per
        source for its ``group`` rows (its beams), which attend as ``group`` query positions of one row."""
        n = x.size(0)
        q = self.q(x).view(n // group, group, self.heads, self.head_dim).transpose(1, 2)  # (N,D) -> (N/g,H,g,Dh)
        context, _ = self.scorer(q, k, v, mask=mask, dropout=self._p(), state=state)  # (N/g,H,g,Dh)
        return self.out(context.transpose(1, 2).reshape(n, -1))  # (N/g,H,g,Dh) -> (N/g,g,H,Dh) -> (N,D)

    def _p(self) -> float:
        return self.dropout if self.training else 0.0


class KVCache:
    """Self-attention keys and values of the positions decoded so far, for every layer of a
    decoder, in one time-major buffer (capacity,L,2,N,H,Dh) that grows ``grow`` positions at a
    time. A step writes each layer's new key and value with one copy in place, and beam
    reordering moves the keys and values of every layer with one ``index_copy_`` over the filled
    positions of the rows that change. The first buffer comes from ``memory``, when given: a
    decoder's :class:`~seqattn.buffer.ReusableBuffer`, so that search after search writes into
    memory already mapped (a beam search's cache is larger than ``malloc`` keeps)."""

    def __init__(self, layers: int, grow: int = 32, memory: ReusableBuffer | None = None) -> None:
        self.layers, self.grow, self.memory = layers, grow, memory
        self.len = 0  # positions every layer has written; see advance
        self.buf: Tensor | None = None

    def append(self, layer: int, kv: Tensor) -> tuple[Tensor, Tensor]:
        """Write ``layer``'s key and value (N,2,H,Dh) of position ``len``; return that layer's
        keys and values (N,H,len+1,Dh) each, as views."""
        t, (n, _, h, dh) = self.len, kv.shape
        if self.buf is None or t == self.buf.size(0):
            shape = (t + 1 + self.grow, self.layers, 2, n, h, dh)  # (capacity,L,2,N,H,Dh)
            grown = kv.new_empty(shape) if self.memory is None else self.memory.take(shape, kv)  # fresh when held
            if t:
                grown[:t] = self.buf[:t]
            self.buf = grown
        self.buf[t, layer] = kv.transpose(0, 1)  # (N,2,H,Dh) -> (2,N,H,Dh)
        filled = self.buf[: t + 1, layer]  # (t+1,2,N,H,Dh)
        return filled[:, 0].permute(1, 2, 0, 3), filled[:, 1].permute(1, 2, 0, 3)  # (N,H,t+1,Dh) each

    def advance(self) -> None:
        """Every layer has written position ``len``: the step is complete."""
        self.len += 1

    def reorder(self, index: Tensor) -> "KVCache":
        """The cache of rows ``index`` (N'). Beam reordering (N' == N) is done in place and moves
        only the rows whose source is another row (beam search keeps most beams in their parent's
        slot): their filled positions are gathered first, then written, so any index is safe. This
        consumes the cache. Anything else (beam expansion) gathers into a new buffer."""
        t = self.len
        if t == 0:
            return self
        cap, layers, _, n, h, dh = self.buf.shape
        flat = self.buf[:t].view(t * layers * 2 * n, h * dh)  # (t,L,2,N,H,Dh) -> (t*L*2*N,H*Dh)
        first = torch.arange(t * layers * 2, device=index.device)[:, None] * n  # (t*L*2,1): each block's first row
        if index.numel() != n:
            out = KVCache(layers, self.grow)
            out.len, out.buf = t, self.buf.new_empty(cap, layers, 2, index.numel(), h, dh)
            torch.index_select(flat, 0, (first + index[None, :]).view(-1), out=out.buf[:t].view(-1, h * dh))
            return out
        moved = (index != torch.arange(n, device=index.device)).nonzero().squeeze(1)  # (M,) rows to overwrite
        if moved.numel():
            src, dst = (first + index[moved][None, :]).view(-1), (first + moved[None, :]).view(-1)  # (t*L*2*M,)
            flat.index_copy_(0, dst, flat.index_select(0, src))  # (t*L*2*M,H*Dh)
        return self


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
