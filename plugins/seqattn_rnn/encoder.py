"""Bidirectional LSTM/GRU encoder over packed sequences."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqattn.dropout import Dropout
from seqattn.interfaces import Encoder


class RNNEncoder(Encoder):
    def __init__(self, vocab_size: int, *, embed_dim: int = 256, hidden: int = 256, layers: int = 2,
                 cell: Literal["lstm", "gru"] = "lstm", bidirectional: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)  # as fairseq's LSTM models; N(0,1) saturates the gates
        self.drop = Dropout(dropout)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embed_dim, hidden, layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if layers > 1 else 0.0)
        self.out_dim = hidden * (2 if bidirectional else 1)

    @property
    def embed_tokens(self) -> nn.Embedding:
        return self.embed

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        lengths = src_mask.sum(1).cpu()  # (B,)
        x = self.drop(self.embed(src))  # (B,S) -> (B,S,E)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B,S,dirs*H)
        return self.drop(out), src_mask
