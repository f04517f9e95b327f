"""Transformer decoder: causal self-attention, cross-attention through any registered scorer,
tied output projection, and incremental decoding with cached keys/values."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from seqattn.buffer import ReusableBuffer
from seqattn.dropout import Dropout
from seqattn.interfaces import Decoder, expand_beam
from seqattn.linear import WeightPack
from seqattn.logits import project
from seqattn.spec import ComponentSpec, Spec
from seqattn_transformer.layers import Embedding, FeedForward, KVCache, MultiHeadAttention, init_linear


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, memory_dim: int, heads: int, ffn: int, dropout: float,
                 attention_dropout: float, activation_dropout: float, activation: str, pre_norm: bool,
                 self_attention: ComponentSpec, cross_attention: ComponentSpec) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, self_attention, attention_dropout, cross=False)
        self.cross_attn = MultiHeadAttention(d_model, heads, cross_attention, attention_dropout, cross=True,
                                             memory_dim=memory_dim)
        self.ffn = FeedForward(d_model, ffn, activation_dropout, activation)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))
        self.drop = Dropout(dropout)
        self.pre_norm = pre_norm

    def _cross(self, h: Tensor, k: Tensor, v: Tensor, mem_mask: Tensor, weights_out: list | None) -> Tensor:
        out, weights = self.cross_attn.cross_attend(h, k, v, mem_mask, need_weights=weights_out is not None)
        if weights_out is not None:
            weights_out.append(weights)
        return out

    def _sub(self, x: Tensor, norm: nn.LayerNorm, fn) -> Tensor:
        """One residual sub-layer, pre- or post-norm. Dropout is called only in training: in a
        decoding step every module call counts (as does indexing ``norms``, hence ``norm``)."""
        if self.pre_norm:
            y = fn(norm(x))
            return x + (self.drop(y) if self.training else y)
        y = fn(x)
        return norm(x + (self.drop(y) if self.training else y))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, mem_mask: Tensor, weights_out: list | None = None) -> Tensor:
        """Teacher forcing, x (B,T,D). ``weights_out``, when given, receives this layer's
        cross-attention weights (B,H,T,S)."""
        first, second, third = self.norms
        x = self._sub(x, first, lambda h: self.self_attn.self_attend(h, causal=True))
        x = self._sub(x, second, lambda h: self._cross(h, k, v, mem_mask, weights_out))
        return self._sub(x, third, self.ffn)

    def step(self, x: Tensor, k: Tensor, v: Tensor, mem_mask: Tensor | None, cache: KVCache, index: int,
             scorer_state: dict, group: int) -> Tensor:
        """Incremental decoding: one new position of N rows, x (N,D) -> (N,D), see
        :meth:`TransformerDecoder.init_state` for the other arguments; ``index``: this layer's."""
        first, second, third = self.norms
        x = self._sub(x, first, lambda h: self.self_attn.step_self(h, cache, index))
        x = self._sub(x, second, lambda h: self.cross_attn.step_cross(h, k, v, mem_mask, scorer_state, group))
        return self._sub(x, third, self.ffn)


class TransformerDecoder(Decoder):
    def __init__(
        self,
        vocab_size: int,
        memory_dim: int,
        *,
        d_model: int = 512,
        layers: int = 6,
        heads: int = 8,
        ffn: int = 2048,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        activation: Literal["relu", "gelu"] = "relu",
        norm: Literal["pre", "post"] = "post",
        positions: Literal["sinusoidal", "learned"] = "sinusoidal",
        max_positions: int = 1024,
        self_attention: Spec("attention") = "scaled_dot",
        cross_attention: Spec("attention") = "scaled_dot",
        tie_output: bool = True,
    ) -> None:
        super().__init__()
        self.embed = Embedding(vocab_size, d_model, positions, max_positions, dropout)
        pre = norm == "pre"
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, memory_dim, heads, ffn, dropout, attention_dropout, activation_dropout, activation,
                         pre, self_attention, cross_attention)
            for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if pre else nn.Identity()
        self.proj = None if tie_output else nn.Linear(d_model, vocab_size, bias=False)
        self.out_pack = WeightPack()
        self.logits_buffer = ReusableBuffer()
        self.cache_memory = ReusableBuffer()  # for the self-attention caches of search after search
        init_linear(self.layers)

    @property
    def embed_tokens(self) -> nn.Embedding:
        return self.embed.tokens

    def forward(self, tgt_in: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        x = self.embed(tgt_in)  # (B,T) -> (B,T,D)
        keep = memory_mask[:, None, None, :]  # (B,S) -> (B,1,1,S)
        for layer in self.layers:
            k, v = layer.cross_attn.memory_kv(memory)  # (B,H,S,Dh) each
            x = layer(x, k, v, keep)
        return self.final_norm(x)

    def alignment(self, tgt_in: Tensor, memory: Tensor, memory_mask: Tensor, layer: int = -1) -> Tensor:
        """Cross-attention weights (B,T,S) of one layer, averaged over heads, recomputed on the
        generic path (the fused kernel never materialises them)."""
        x = self.embed(tgt_in)
        keep = memory_mask[:, None, None, :]  # (B,S) -> (B,1,1,S)
        weights: list[Tensor] = []
        for lyr in self.layers[: range(len(self.layers))[layer] + 1]:
            x = lyr(x, *lyr.cross_attn.memory_kv(memory), keep, weights_out=weights)
        return weights[-1].mean(1)  # (B,H,T,S) -> (B,T,S)

    def _out_weight(self) -> Tensor:
        return self.embed_tokens.weight if self.proj is None else self.proj.weight  # (V,D)

    def set_packing(self, rows: int | None) -> None:
        """The output projection's pack, see :func:`seqattn.linear.packed_for_rows`."""
        self.out_pack.activate(self._out_weight(), rows)

    def train(self, mode: bool = True) -> "TransformerDecoder":
        if mode:
            self.out_pack.clear()
            self.cache_memory.clear()
        return super().train(mode)

    def output(self, hidden: Tensor) -> Tensor:
        if self.out_pack.active:
            rows = hidden.reshape(-1, hidden.size(-1))  # (...,D) -> (M,D)
            return self.out_pack.matmul(rows, None).view(*hidden.shape[:-1], -1)  # (M,V) -> (...,V)
        return project(hidden, self._out_weight(), self.logits_buffer)  # (...,D) -> (...,V)

    def init_state(self, memory: Tensor, memory_mask: Tensor, beam: int = 1) -> dict:
        cross = [layer.cross_attn.memory_kv(memory) for layer in self.layers]  # once per source
        group = beam
        if self.layers[0].cross_attn.scorer.stateful:  # its per-row state needs per-row keys
            cross = [(expand_beam(k, beam), expand_beam(v, beam)) for k, v in cross]
            memory_mask, group = expand_beam(memory_mask, beam), 1
        unpadded = bool(memory_mask.all())  # then no mask at all: a fused kernel need not apply one
        return {
            "_mask": None if unpadded else memory_mask[:, None, None, :],  # (N/g,1,1,S), fixed per source
            "_cross": [{"k": k, "v": v} for k, v in cross],  # (N/g,H,S,Dh) each, fixed per source
            "_group": group,  # rows per stored source: a source's beams share its keys/values
            "scorer": [{} for _ in self.layers],  # a stateful cross-attention scorer's memory
            "self": KVCache(len(self.layers), memory=self.cache_memory),  # self-attention keys/values so far
            "_t": 0,
        }

    def reorder_state(self, state: dict, index: Tensor) -> dict:
        rest = super().reorder_state({k: v for k, v in state.items() if k != "self"}, index)
        return rest | {"self": state["self"].reorder(index)}

    def step(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
        t = state["_t"]
        x = self.embed(tokens.unsqueeze(1), offset=t)[:, 0]  # (N,) -> (N,1,D) -> (N,D)
        cache = state["self"]
        for i, (layer, cross, scorer) in enumerate(zip(self.layers, state["_cross"], state["scorer"])):
            x = layer.step(x, cross["k"], cross["v"], state["_mask"], cache, i, scorer, state["_group"])
        cache.advance()
        state["_t"] = t + 1
        return self.output(self.final_norm(x)), state  # (N,V)
