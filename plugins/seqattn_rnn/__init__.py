"""Recurrent sequence-to-sequence models: a bidirectional LSTM/GRU encoder and attentional
decoders in the Bahdanau (2015) and Luong (2015, input feeding) styles."""

from seqattn import hookimpl


@hookimpl
def seqattn_register(registry):
    from seqattn_rnn.decoder import BahdanauDecoder, LuongDecoder
    from seqattn_rnn.encoder import RNNEncoder

    registry.add("encoder", "rnn", RNNEncoder)
    registry.add("decoder", "rnn_bahdanau", BahdanauDecoder)
    registry.add("decoder", "rnn_luong", LuongDecoder)
