"""The translation task: parallel text in, sacreBLEU and chrF out."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from seqattn.batching import Batch, Ragged, chunks, token_batches
from seqattn.config import DataSource
from seqattn.errors import SeqattnError
from seqattn.evaluation import gather_pairs, mean_loss, my_batches
from seqattn.interfaces import Task
from seqattn.loss import smoothed_cross_entropy
from seqattn.plot import Alignment
from seqattn.search import search
from seqattn.spec import ComponentSpec, Spec
from seqattn_text.data import read_pairs


class TranslationTask(Task):
    def __init__(
        self,
        *,
        source_lang: str,
        target_lang: str,
        train: DataSource,
        valid: DataSource | None = None,
        test: DataSource | None = None,
        tokenizer: Spec("tokenizer") = "sentencepiece",
        joint_vocab: bool = True,
        label_smoothing: float = 0.1,
        max_source_len: int = 250,
        max_target_len: int = 250,
        max_len_ratio: float | None = 3.0,
        sacrebleu_tokenize: str = "13a",
    ) -> None:
        self.src_lang, self.tgt_lang = source_lang, target_lang
        self.sources = {k: v for k, v in {"train": train, "valid": valid, "test": test}.items() if v is not None}
        self.tok_spec: ComponentSpec = tokenizer
        self.joint = joint_vocab
        self.src_tok = tokenizer.build()
        self.tgt_tok = self.src_tok if joint_vocab else tokenizer.build()
        self.label_smoothing = label_smoothing
        self.max_src, self.max_tgt, self.max_ratio = max_source_len, max_target_len, max_len_ratio
        self.bleu_tokenize = sacrebleu_tokenize
        self.data: dict[str, dict] = {}

    # -- setup ---------------------------------------------------------------------------------
    def setup(self, run_dir: Path, fit: bool) -> None:
        texts = {}
        if fit:
            for split, source in self.sources.items():
                texts[split] = read_pairs(source, self.src_lang, self.tgt_lang, f"task.{split}")
        for side, tok in self._tokenizers(run_dir):
            if not fit and not (run_dir / side).is_dir():
                raise SeqattnError(f"{run_dir / side}: tokenizer missing from the run directory")
            tok.train_or_load(run_dir / side, lambda side=side: self._corpus(side, *texts["train"]))
        for split, (src, tgt) in texts.items():
            self.data[split] = self._encode(src, tgt, filter_lengths=split == "train")

    @staticmethod
    def _corpus(side: str, src: list[str], tgt: list[str]) -> list[str]:
        """The training text of one tokenizer: both languages when the vocabulary is joint."""
        return src + tgt if side == "tokenizer" else (src if side == "tokenizer_src" else tgt)

    def _tokenizers(self, run_dir: Path):
        if self.joint:
            return [("tokenizer", self.src_tok)]
        return [("tokenizer_src", self.src_tok), ("tokenizer_tgt", self.tgt_tok)]

    def _encode(self, src: list[str], tgt: list[str], filter_lengths: bool) -> dict:
        s_ids, t_ids = self.src_tok.encode(src), self.tgt_tok.encode(tgt)
        keep = np.arange(len(src))
        if filter_lengths:
            sl = np.array([len(s) for s in s_ids]) + 1
            tl = np.array([len(t) for t in t_ids]) + 1
            ok = (sl >= 2) & (tl >= 2) & (sl <= self.max_src) & (tl <= self.max_tgt)
            if self.max_ratio is not None:
                ok &= (np.maximum(sl, tl) / np.minimum(sl, tl)) <= self.max_ratio
            keep = np.nonzero(ok)[0]
            if len(keep) == 0:
                raise SeqattnError("task.train: no sentence pair survives the length filters")
        return {
            "src": Ragged([s_ids[i] for i in keep], append=self.src_tok.eos_id),
            "tgt": Ragged([t_ids[i] for i in keep], append=self.tgt_tok.eos_id),
            "src_text": [src[i] for i in keep],
            "tgt_text": [tgt[i] for i in keep],
        }

    # -- model ---------------------------------------------------------------------------------
    def build_model(self, spec: ComponentSpec) -> torch.nn.Module:
        if spec.kwargs.get("share_embeddings") and not self.joint:
            raise SeqattnError("model.share_embeddings: needs task.joint_vocab (one vocabulary for both languages)")
        return spec.build(self.src_tok.vocab_size, self.tgt_tok.vocab_size)

    # -- batches -------------------------------------------------------------------------------
    def batches(self, split: str, epoch: int, seed: int, max_tokens: int, shuffle: bool = True) -> list[np.ndarray]:
        d = self.data[split]
        size = np.maximum(d["src"].lengths, d["tgt"].lengths)  # target length counts its BOS/EOS once
        return token_batches(size, max_tokens, seed, epoch, shuffle)

    def collate(self, split: str, index: np.ndarray) -> Batch:
        d = self.data[split]
        src = torch.from_numpy(d["src"].pad(index, self.src_tok.pad_id))
        tok = self.tgt_tok
        tgt_in, tgt_out = d["tgt"].teacher_forcing(index, tok.pad_id, tok.bos_id, tok.eos_id)
        mask = torch.from_numpy(np.arange(src.size(1))[None, :] < d["src"].lengths[index][:, None])
        return Batch(src, mask, tgt_in, tgt_out, int(d["tgt"].lengths[index].sum()), index)

    def batch_tokens(self, batch: Batch) -> int:
        return batch.ntokens

    # -- loss ----------------------------------------------------------------------------------
    def loss(self, model, batch: Batch, label_smoothing: float | None = None) -> torch.Tensor:
        select = batch.tgt_out != self.tgt_tok.pad_id  # (B,T)
        logits = model(batch.src, batch.src_mask, batch.tgt_in, select)  # (N,V)
        smoothing = self.label_smoothing if label_smoothing is None else label_smoothing
        return smoothed_cross_entropy(logits, batch.tgt_out[select], smoothing)

    # -- evaluation ----------------------------------------------------------------------------
    def translate(self, model, sentences: list[str], cfg, device) -> list[list[str]]:
        """n-best translations (detokenized) of raw source sentences."""
        d = {"src": Ragged(self.src_tok.encode(sentences), append=self.src_tok.eos_id)}
        out: list[list[str]] = [[] for _ in sentences]
        order = np.argsort(d["src"].lengths, kind="stable")
        for chunk in chunks(order, d["src"].lengths, cfg.max_tokens):
            src = torch.from_numpy(d["src"].pad(chunk, self.src_tok.pad_id)).to(device)
            mask = src != self.src_tok.pad_id
            hyps = search(model, src, mask, cfg, bos=self.tgt_tok.bos_id, eos=self.tgt_tok.eos_id)
            for i, nbest in zip(chunk.tolist(), hyps):
                out[i] = self.tgt_tok.decode([h.tokens for h in nbest])
        return out

    def alignments(self, model, sentences: list[str], hypotheses: list[str], device) -> list[Alignment]:
        """The cross-attention weights of each (source, hypothesis) pair, recomputed on demand."""
        out = []
        with torch.no_grad():
            for src_text, hyp in zip(sentences, hypotheses):
                src_ids = self.src_tok.encode([src_text])[0] + [self.src_tok.eos_id]
                tgt_ids = self.tgt_tok.encode([hyp])[0]
                src = torch.tensor([src_ids], device=device)
                memory, mem_mask = model.encode(src, torch.ones_like(src, dtype=torch.bool))
                tgt_in = torch.tensor([[self.tgt_tok.bos_id] + tgt_ids], device=device)
                weights = model.decoder.alignment(tgt_in, memory, mem_mask)[0]  # (T,S)
                out.append(Alignment(self.src_tok.pieces(src_ids), self.tgt_tok.pieces(tgt_ids + [self.tgt_tok.eos_id]),
                                     weights.float().cpu().numpy()))
        return out

    def evaluate(self, model, split: str, search_cfg, accelerator, generate: bool = True) -> dict:
        d = self.data[split]
        mine = my_batches(self, split, search_cfg.max_tokens, accelerator)
        loss = mean_loss(self, model, split, mine, accelerator)
        metrics = {"loss": loss, "ppl": math.exp(min(loss, 50.0))}
        if not generate:
            return metrics
        idx = np.concatenate(mine) if mine else np.zeros(0, dtype=np.int64)
        hyps = self.translate(model, [d["src_text"][i] for i in idx], search_cfg, accelerator.device)
        pairs = gather_pairs(list(zip(idx.tolist(), [h[0] for h in hyps])))
        return metrics | self.score([h for _, h in pairs], d["tgt_text"], d["src_text"])

    def score(self, hyps: list[str], refs: list[str], srcs: list[str]) -> dict:
        from sacrebleu.metrics import BLEU, CHRF

        bleu, chrf = BLEU(tokenize=self.bleu_tokenize), CHRF()
        b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
        return {"bleu": round(b.score, 2), "chrf": round(c.score, 2), "signature": str(bleu.get_signature()),
                "chrf_signature": str(chrf.get_signature()), "samples": list(zip(srcs[:3], hyps[:3], refs[:3]))}
