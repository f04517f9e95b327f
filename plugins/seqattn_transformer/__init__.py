"""Built-in Transformer encoder and decoder (Vaswani et al. 2017)."""

from seqattn import hookimpl


@hookimpl
def seqattn_register(registry):
    from seqattn_transformer.decoder import TransformerDecoder
    from seqattn_transformer.encoder import TransformerEncoder

    registry.add("encoder", "transformer", TransformerEncoder)
    registry.add("decoder", "transformer", TransformerDecoder)
