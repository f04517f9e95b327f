"""Attentional RNN decoders. Both run one step at a time (the recurrence needs it), in training
and in search alike; the attention scorer is any registered one, built as
``scorer(query_dim=hidden, key_dim=memory_dim)`` with a single head."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from seqattn.buffer import ReusableBuffer
from seqattn.dropout import Dropout
from seqattn.interfaces import Decoder, expand_beam
from seqattn.logits import project
from seqattn.spec import ComponentSpec, Spec


class _RNNDecoder(Decoder):
    def __init__(self, vocab_size: int, memory_dim: int, embed_dim: int, hidden: int, layers: int, cell: str,
                 dropout: float, attention: ComponentSpec, feed_dim: int, out_dim: int, tie_output: bool) -> None:
        super().__init__()
        self.feed_dim = feed_dim  # size of the extra per-step input (context or attentional state)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)  # N(0,1) made the tied output's first logits ~10x too large
        self.drop = Dropout(dropout)
        self.cell_type = cell
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embed_dim + self.feed_dim, hidden, layers, batch_first=True,
                       dropout=dropout if layers > 1 else 0.0)
        self.init = nn.Linear(memory_dim, layers * hidden)  # initial state from the mean memory
        self.attention = attention.build(hidden, memory_dim)
        self.layers, self.hidden, self.memory_dim = layers, hidden, memory_dim
        self.proj = None if tie_output and out_dim == embed_dim else nn.Linear(out_dim, vocab_size, bias=False)
        self.logits_buffer = ReusableBuffer()

    @property
    def embed_tokens(self) -> nn.Embedding:
        return self.embed

    def output(self, hidden: Tensor) -> Tensor:
        weight = self.embed.weight if self.proj is None else self.proj.weight
        return project(hidden, weight, self.logits_buffer)  # (...,Do) -> (...,V)

    def init_state(self, memory: Tensor, memory_mask: Tensor, beam: int = 1) -> dict:
        memory, memory_mask = expand_beam(memory, beam), expand_beam(memory_mask, beam)  # (N,S,Dm), (N,S)
        m = memory_mask.unsqueeze(-1).to(memory.dtype)  # (N,S,1)
        mean = (memory * m).sum(1) / m.sum(1).clamp(min=1)  # (N,Dm)
        h = torch.tanh(self.init(mean)).view(-1, self.layers, self.hidden)  # (N,L*H) -> (N,L,H)
        state = {"h": h, "_memory": memory.unsqueeze(1), "_mask": memory_mask[:, None, None, :],  # (N,1,S,Dm), (N,1,1,S)
                 "feed": memory.new_zeros(memory.size(0), self.feed_dim), "scorer": {}}
        if self.cell_type == "lstm":
            state["c"] = torch.zeros_like(h)
        return state

    def _rnn(self, x: Tensor, state: dict) -> Tensor:
        """One recurrent step: x (N,In) -> top-layer output (N,H); updates state["h"]/["c"]."""
        h = state["h"].transpose(0, 1).contiguous()  # (N,L,H) -> (L,N,H)
        hc = (h, state["c"].transpose(0, 1).contiguous()) if self.cell_type == "lstm" else h
        out, new = self.rnn(x.unsqueeze(1), hc)  # (N,1,H)
        if self.cell_type == "lstm":
            state["h"], state["c"] = new[0].transpose(0, 1), new[1].transpose(0, 1)
        else:
            state["h"] = new.transpose(0, 1)
        return out[:, 0]

    def _attend(self, query: Tensor, state: dict) -> Tensor:
        """query (N,H) -> context (N,Dm) through the scorer (one head)."""
        mem = state["_memory"]
        keep = "_weights" in state  # alignment() asks for the weights
        context, weights = self.attention(query[:, None, None, :], mem, mem, mask=state["_mask"], state=state["scorer"],
                                          need_weights=keep)
        if keep:
            state["_weights"].append(weights[:, 0, 0])  # (N,1,1,S) -> (N,S)
        return context[:, 0, 0]  # (N,1,1,Dm) -> (N,Dm)

    def forward(self, tgt_in: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        state = self.init_state(memory, memory_mask)
        outs = []
        for t in range(tgt_in.size(1)):  # the recurrence is sequential over time, not over the batch
            out, state = self._advance(tgt_in[:, t], state)
            outs.append(out)
        return torch.stack(outs, dim=1)  # (B,T,Do)

    def alignment(self, tgt_in: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Attention weights (B,T,S) of each decoder step under teacher forcing."""
        state = self.init_state(memory, memory_mask)
        state["_weights"] = []
        for t in range(tgt_in.size(1)):
            _, state = self._advance(tgt_in[:, t], state)
        return torch.stack(state["_weights"], dim=1)  # T x (B,S) -> (B,T,S)

    def step(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
        out, state = self._advance(tokens, state)
        return self.output(out), state

    def _advance(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
        raise NotImplementedError


class BahdanauDecoder(_RNNDecoder):
    """Bahdanau et al. 2015: attend with the previous state, feed [y; c] to the RNN, read out
    from (state, context, y) through a maxout-free tanh layer."""

    def __init__(self, vocab_size: int, memory_dim: int, *, embed_dim: int = 256, hidden: int = 512, layers: int = 1,
                 cell: Literal["lstm", "gru"] = "gru", dropout: float = 0.2, attention: Spec("attention") = "additive",
                 tie_output: bool = True) -> None:
        super().__init__(vocab_size, memory_dim, embed_dim, hidden, layers, cell, dropout, attention,
                         feed_dim=memory_dim, out_dim=embed_dim, tie_output=tie_output)
        self.readout = nn.Linear(hidden + memory_dim + embed_dim, embed_dim)

    def _advance(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
        y = self.drop(self.embed(tokens))  # (N,E)
        context = self._attend(state["h"][:, -1], state)  # query: the previous top-layer state
        s = self._rnn(torch.cat([y, context], -1), state)  # (N,H)
        return self.drop(torch.tanh(self.readout(torch.cat([s, context, y], -1)))), state


class LuongDecoder(_RNNDecoder):
    """Luong et al. 2015 with input feeding: the RNN reads [y; h~_{t-1}], attends with its new
    state, and h~_t = tanh(W [c; h]) is both the output and the next step's feed."""

    def __init__(self, vocab_size: int, memory_dim: int, *, embed_dim: int = 256, hidden: int = 256, layers: int = 2,
                 cell: Literal["lstm", "gru"] = "lstm", dropout: float = 0.2, attention: Spec("attention") = "bilinear",
                 tie_output: bool = True) -> None:
        super().__init__(vocab_size, memory_dim, embed_dim, hidden, layers, cell, dropout, attention,
                         feed_dim=hidden, out_dim=hidden, tie_output=tie_output)
        self.combine = nn.Linear(memory_dim + hidden, hidden, bias=False)

    def _advance(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
        y = self.drop(self.embed(tokens))  # (N,E)
        h = self._rnn(torch.cat([y, state["feed"]], -1), state)  # (N,H)
        context = self._attend(h, state)
        feed = self.drop(torch.tanh(self.combine(torch.cat([context, h], -1))))  # (N,H)
        state["feed"] = feed
        return feed, state
