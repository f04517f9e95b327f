"""Speech: log-mel features, a subsampling recurrent encoder, CTC, and spoken digit strings
composed from the Free Spoken Digit Dataset with a speaker-disjoint test split."""

from seqattn import hookimpl


@hookimpl
def seqattn_register(registry):
    from seqattn_speech.ctc import CTCModel
    from seqattn_speech.encoder import SpeechEncoder
    from seqattn_speech.joint import JointCTCAttention
    from seqattn_speech.task import DigitStringsTask
    from seqattn_speech.tokenizer import WordTokenizer

    registry.add("encoder", "speech_rnn", SpeechEncoder)
    registry.add("model", "ctc", CTCModel)
    registry.add("model", "joint_ctc_attention", JointCTCAttention)
    registry.add("task", "digit_strings", DigitStringsTask)
    registry.add("tokenizer", "words", WordTokenizer)
