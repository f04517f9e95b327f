"""The encoder-decoder model shape, shared by translation, captioning and attention-based ASR."""

from seqattn import hookimpl


@hookimpl
def seqattn_register(registry):
    from seqattn_seq2seq.model import EncoderDecoder

    registry.add("model", "encoder_decoder", EncoderDecoder)
