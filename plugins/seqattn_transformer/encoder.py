"""Transformer encoder: embedding + N self-attention layers (pre- or post-norm)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from seqattn.dropout import Dropout
from seqattn.interfaces import Encoder
from seqattn.spec import ComponentSpec, Spec
from seqattn_transformer.layers import Embedding, FeedForward, MultiHeadAttention, init_linear


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float, attention_dropout: float,
                 activation_dropout: float, activation: str, pre_norm: bool, attention: ComponentSpec) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads, attention, attention_dropout, cross=False)
        self.ffn = FeedForward(d_model, ffn, activation_dropout, activation)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.pre_norm:
            x = x + self.drop(self.attn.self_attend(self.norm1(x), mask))
            return x + self.drop(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn.self_attend(x, mask)))
        return self.norm2(x + self.drop(self.ffn(x)))


class TransformerEncoder(Encoder):
    def __init__(
        self,
        vocab_size: int,
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
        attention: Spec("attention") = "scaled_dot",
    ) -> None:
        super().__init__()
        self.embed = Embedding(vocab_size, d_model, positions, max_positions, dropout)
        pre = norm == "pre"
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, heads, ffn, dropout, attention_dropout, activation_dropout, activation, pre, attention)
            for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if pre else nn.Identity()
        self.out_dim = d_model
        init_linear(self.layers)

    @property
    def embed_tokens(self) -> nn.Embedding:
        return self.embed.tokens

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        x = self.embed(src)  # (B,S) -> (B,S,D)
        keep = src_mask[:, None, None, :]  # (B,S) -> (B,1,1,S): every query sees the real keys
        for layer in self.layers:
            x = layer(x, keep)
        return self.final_norm(x), src_mask
