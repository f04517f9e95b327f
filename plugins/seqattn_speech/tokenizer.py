"""A whitespace word tokenizer with a vocabulary learned from the training text (JSON file)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from seqattn.errors import SeqattnError
from seqattn.interfaces import Tokenizer

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


class WordTokenizer(Tokenizer):
    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, *, vocab_size: int = 100, min_frequency: int = 1) -> None:
        self.vocab_size, self.min_frequency = vocab_size, min_frequency
        self.words: list[str] = list(SPECIALS)
        self.ids: dict[str, int] = {}

    def train(self, texts: Iterable[str], directory: Path) -> None:
        counts = Counter(w for t in texts for w in t.split())
        ranked = [w for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if c >= self.min_frequency]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "words.json").write_text(json.dumps(SPECIALS + ranked[: self.vocab_size - len(SPECIALS)]))
        self.load(directory)

    def load(self, directory: Path) -> None:
        path = directory / "words.json"
        try:
            self.words = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SeqattnError(f"{path}: cannot read the word list ({exc})") from None
        self.ids = {w: i for i, w in enumerate(self.words)}
        self.vocab_size = len(self.words)

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [[self.ids.get(w, self.unk_id) for w in t.split()] for t in texts]

    def decode(self, ids: list[list[int]]) -> list[str]:
        return [" ".join(self.words[i] for i in row if i >= len(SPECIALS)) for row in ids]

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.words[i] for i in ids]
