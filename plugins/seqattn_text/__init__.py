"""Text: tokenizers (sentencepiece, Hugging Face tokenizers), the translation task, and a
generated English->German corpus for the offline quickstart."""

from seqattn import hookimpl


@hookimpl
def seqattn_register(registry):
    from seqattn_text.hf_bpe import HFBPETokenizer
    from seqattn_text.numbers import numbers_en_de
    from seqattn_text.sentencepiece_tok import SentencePieceTokenizer
    from seqattn_text.translation import TranslationTask

    registry.add("tokenizer", "sentencepiece", SentencePieceTokenizer)
    registry.add("tokenizer", "hf_bpe", HFBPETokenizer)
    registry.add("task", "translation", TranslationTask)
    registry.add("corpus", "numbers_en_de", numbers_en_de)
