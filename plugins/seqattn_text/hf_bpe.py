"""Byte-pair encoding with Hugging Face ``tokenizers``, saved as ``tokenizer.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from seqattn.errors import SeqattnError
from seqattn.interfaces import Tokenizer

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


class HFBPETokenizer(Tokenizer):
    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, *, vocab_size: int = 8000, min_frequency: int = 2) -> None:
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.tok = None

    def train(self, texts: Iterable[str], directory: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE(unk_token="<unk>"))
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=self.vocab_size, min_frequency=self.min_frequency,
                                      special_tokens=SPECIALS, show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        directory.mkdir(parents=True, exist_ok=True)
        tok.save(str(directory / "tokenizer.json"))
        self.load(directory)

    def load(self, directory: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        path = directory / "tokenizer.json"
        if not path.is_file():
            raise SeqattnError(f"{path}: tokenizer file not found")
        try:
            self.tok = HFTokenizer.from_file(str(path))
        except Exception as exc:
            raise SeqattnError(f"{path}: not a valid tokenizers file ({' '.join(str(exc).split())})") from None
        if [self.tok.token_to_id(s) for s in SPECIALS] != [0, 1, 2, 3]:
            raise SeqattnError(f"{path}: special tokens must be {SPECIALS} with ids 0-3")
        self.vocab_size = self.tok.get_vocab_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.tok.decode_batch([list(i) for i in ids])

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.tok.id_to_token(int(i)) for i in ids]
