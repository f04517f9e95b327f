"""SentencePiece tokenizer (unigram or BPE), saved as ``spm.model``/``spm.vocab``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal

from seqattn.errors import SeqattnError
from seqattn.interfaces import Tokenizer


class SentencePieceTokenizer(Tokenizer):
    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, *, vocab_size: int = 8000, model_type: Literal["unigram", "bpe"] = "unigram",
                 character_coverage: float = 1.0, max_sentences: int = 3_000_000) -> None:
        self.vocab_size = vocab_size
        self.model_type = model_type
        self.character_coverage = character_coverage
        self.max_sentences = max_sentences
        self.sp = None

    def train(self, texts: Iterable[str], directory: Path) -> None:
        import sentencepiece as spm

        directory.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_prefix=str(directory / "spm"), vocab_size=self.vocab_size,
            model_type=self.model_type, character_coverage=self.character_coverage,
            pad_id=self.pad_id, unk_id=self.unk_id, bos_id=self.bos_id, eos_id=self.eos_id,
            hard_vocab_limit=False, input_sentence_size=self.max_sentences, shuffle_input_sentence=True,
            num_threads=1, minloglevel=2,
        )
        self.load(directory)

    def load(self, directory: Path) -> None:
        import sentencepiece as spm

        path = directory / "spm.model"
        if not path.is_file():
            raise SeqattnError(f"{path}: sentencepiece model not found")
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(path))
        except (OSError, RuntimeError) as exc:
            raise SeqattnError(f"{path}: not a valid sentencepiece model ({' '.join(str(exc).split())})") from None
        self.vocab_size = self.sp.GetPieceSize()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.sp.Encode(list(texts))

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.sp.Decode([list(i) for i in ids])

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.sp.IdToPiece(int(i)) for i in ids]
