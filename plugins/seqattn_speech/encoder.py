"""A speech encoder: two strided convolutions (4x fewer frames) and a bidirectional LSTM/GRU."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqattn.dropout import Dropout
from seqattn.interfaces import Encoder


class SpeechEncoder(Encoder):
    def __init__(self, feature_dim: int, *, channels: int = 64, hidden: int = 192, layers: int = 2,
                 cell: Literal["lstm", "gru"] = "lstm", dropout: float = 0.2) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(feature_dim, channels, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.GELU())
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(channels, hidden, layers, batch_first=True, bidirectional=True,
                       dropout=dropout if layers > 1 else 0.0)
        self.drop = Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv(src.transpose(1, 2)).transpose(1, 2)  # (B,S,F) -> (B,F,S) -> (B,C,S/4) -> (B,S/4,C)
        lengths = src_mask.sum(1)
        for _ in range(2):
            lengths = (lengths - 1) // 2 + 1  # each stride-2 conv with padding 1
        mask = (lengths[:, None] > 0) & (lengths.new_tensor(range(x.size(1)))[None, :] < lengths[:, None])  # (B,S/4)
        packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))  # (B,S/4,2H)
        return self.drop(out), mask
