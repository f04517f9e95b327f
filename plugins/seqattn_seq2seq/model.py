"""EncoderDecoder: any registered encoder feeding any registered decoder."""

from __future__ import annotations

from torch import Tensor, nn

from seqattn.errors import SeqattnError
from seqattn.spec import Spec


class EncoderDecoder(nn.Module):
    def __init__(self, src_vocab: int, tgt_vocab: int, *, encoder: Spec("encoder"), decoder: Spec("decoder"),
                 share_embeddings: bool = False) -> None:
        super().__init__()
        self.encoder = encoder.build(src_vocab)
        self.decoder = decoder.build(tgt_vocab, self.encoder.out_dim)
        if share_embeddings:
            a, b = self.encoder.embed_tokens, self.decoder.embed_tokens
            if a is None or b is None or a.weight.shape != b.weight.shape:
                raise SeqattnError(
                    "model.share_embeddings: needs a joint vocabulary and token embeddings of one shape in "
                    "encoder and decoder"
                )
            b.weight = a.weight  # one parameter, two uses

    def encode(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(src, src_mask)  # (B,S,D), (B,S)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, select: Tensor | None = None) -> Tensor:
        """Teacher-forced logits: (B,T,V), or (N,V) for the positions where ``select`` (B,T) is set
        (so padding never reaches the output projection)."""
        memory, mem_mask = self.encoder(src, src_mask)
        hidden = self.decoder(tgt_in, memory, mem_mask)  # (B,T,D)
        if select is not None:
            hidden = hidden[select]  # (B,T,D) -> (N,D)
        return self.decoder.output(hidden)
