"""Speech recognition of spoken digit strings: CTC or attention, scored by token error rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seqattn.batching import Batch, Ragged, token_batches
from seqattn.errors import SeqattnError
from seqattn.evaluation import gather_pairs, mean_loss, my_batches
from seqattn.interfaces import Task
from seqattn.loss import smoothed_cross_entropy
from seqattn.plot import Alignment
from seqattn.search import search
from seqattn.spec import ComponentSpec, Spec
from seqattn_speech import ctc
from seqattn_speech.features import log_mel
from seqattn_speech.fsdd import compose, load_recordings, resample, trim


class DigitStringsTask(Task):
    def __init__(self, *, root: str = "../shared/data/fsdd", test_speaker: str = "lucas", train_size: int = 3000,
                 valid_size: int = 200, test_size: int = 500, min_digits: int = 3, max_digits: int = 6,
                 gap_ms: float = 120.0, trim_db: float = 0.0, n_mels: int = 40, n_ceps: int = 0, floor_db: float = 0.0,
                 seed: int = 0,
                 tokenizer: Spec("tokenizer") = "words",
                 label_smoothing: float = 0.1, speed_perturb: float = 0.0, vtlp: float = 0.0, freq_masks: int = 0,
                 freq_width: int = 8, time_masks: int = 0, time_width: float = 0.05) -> None:
        self.root, self.test_speaker = Path(root), test_speaker
        if not self.root.is_dir():
            raise SeqattnError(f"task.root: folder not found: {root}")
        self.sizes = {"train": train_size, "valid": valid_size, "test": test_size}
        self.digits, self.gap_ms, self.seed = (min_digits, max_digits), gap_ms, seed
        self.trim_db = trim_db  # > 0: cut each recording's leading/trailing silence before composing
        self.features = {"n_mels": n_mels, "n_ceps": n_ceps, "floor_db": floor_db}  # log_mel's options
        self.tok = tokenizer.build()
        self.label_smoothing = label_smoothing
        self.perturb = (speed_perturb, vtlp)  # fresh speed and VTLP factors for every training batch
        self.masks = (freq_masks, freq_width, time_masks, time_width)  # SpecAugment on training batches
        self.model_kind = ""  # "ctc" (no decoder), "joint_ctc_attention", or an attention model
        self.ctc_weight = 0.0
        self.data: dict[str, dict] = {}

    def setup(self, run_dir: Path, fit: bool) -> None:
        tok_dir = run_dir / "tokenizer"
        if not fit:
            self.tok.load(tok_dir)
            return
        recordings = load_recordings(self.root)
        for r in recordings:
            r["wave"] = trim(r["wave"], r["rate"], self.trim_db)
        if self.test_speaker not in {r["speaker"] for r in recordings}:
            raise SeqattnError(f"task.test_speaker: no recordings of {self.test_speaker!r}")
        pools = {"train": [r for r in recordings if r["speaker"] != self.test_speaker and r["index"] < 45],
                 "valid": [r for r in recordings if r["speaker"] != self.test_speaker and r["index"] >= 45],
                 "test": [r for r in recordings if r["speaker"] == self.test_speaker]}
        utts = {s: compose(pools[s], self.sizes[s], *self.digits, self.gap_ms, self.seed + i)
                for i, s in enumerate(("train", "valid", "test"))}
        self.tok.train_or_load(tok_dir, lambda: [t for _, _, t in utts["train"]])
        for split, items in utts.items():
            feats = [log_mel(w, r, **self.features) for w, r, _ in items]
            text = [t for _, _, t in items]
            self.data[split] = {"feats": feats, "frames": np.array([f.size(0) for f in feats]),
                                "tgt": Ragged(self.tok.encode(text), append=self.tok.eos_id), "text": text}
        if any(self.perturb):  # features are recomputed from the waves at every training batch
            self.data["train"]["waves"] = [(w, r) for w, r, _ in utts["train"]]

    @property
    def feature_dim(self) -> int:
        return self.features["n_ceps"] or self.features["n_mels"]

    @property
    def is_ctc(self) -> bool:
        return self.model_kind == "ctc"

    def build_model(self, spec: ComponentSpec) -> torch.nn.Module:
        self.model_kind = spec.name
        if spec.name == "joint_ctc_attention":  # its beam search places the CTC end-of-sentence score on EOS
            model = spec.build(self.feature_dim, self.tok.vocab_size, self.tok.eos_id)
            self.ctc_weight = model.ctc_weight
            return model
        return spec.build(self.feature_dim, self.tok.vocab_size)

    def batches(self, split: str, epoch: int, seed: int, max_tokens: int, shuffle: bool = True) -> list[np.ndarray]:
        return token_batches(self.data[split]["frames"], max_tokens, seed, epoch, shuffle)

    def collate(self, split: str, index: np.ndarray) -> Batch:
        d = self.data[split]
        if split == "train" and "waves" in d:
            items = [self._perturbed(*d["waves"][i]) for i in index]
        else:
            items = [d["feats"][i] for i in index]
        feats = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)  # (B,S,F)
        mask = torch.arange(feats.size(1))[None, :] < torch.tensor([f.size(0) for f in items])[:, None]
        tgt_in, tgt_out = d["tgt"].teacher_forcing(index, self.tok.pad_id, self.tok.bos_id, self.tok.eos_id)
        if split == "train" and (self.masks[0] or self.masks[2]):
            feats = spec_augment(feats, mask, *self.masks)
        return Batch(feats, mask, tgt_in, tgt_out, int(d["tgt"].lengths[index].sum()), index)

    def _perturbed(self, wave: np.ndarray, rate: int) -> torch.Tensor:
        """Features of ``wave`` played at a random speed in 1 +- speed_perturb, with a random
        VTLP warp in 1 +- vtlp. Draws from torch's RNG, so exact resume covers it. Batching counts the
        unperturbed frames, so a batch may hold up to 1 / (1 - speed_perturb) times max_tokens frames."""
        u = torch.rand(2).tolist()
        speed, warp = (1 + p * (2 * x - 1) for p, x in zip(self.perturb, u))
        return log_mel(resample(wave, speed), rate, warp=warp, **self.features)

    def batch_tokens(self, batch: Batch) -> int:
        return batch.ntokens

    def loss(self, model, batch: Batch, label_smoothing: float | None = None) -> torch.Tensor:
        if self.is_ctc:
            return self._ctc_loss(*model(batch.src, batch.src_mask), batch)
        select = batch.tgt_out != self.tok.pad_id
        smoothing = self.label_smoothing if label_smoothing is None else label_smoothing
        if self.model_kind == "joint_ctc_attention":
            logits, log_probs, mask = model(batch.src, batch.src_mask, batch.tgt_in, select)
            ce = smoothed_cross_entropy(logits, batch.tgt_out[select], smoothing)
            return (1 - self.ctc_weight) * ce + self.ctc_weight * self._ctc_loss(log_probs, mask, batch)
        logits = model(batch.src, batch.src_mask, batch.tgt_in, select)
        return smoothed_cross_entropy(logits, batch.tgt_out[select], smoothing)

    def _ctc_loss(self, log_probs: torch.Tensor, mask: torch.Tensor, batch: Batch) -> torch.Tensor:
        labels = batch.tgt_out.masked_fill(batch.tgt_out == self.tok.eos_id, self.tok.pad_id)  # CTC has no EOS
        return ctc.ctc_loss(log_probs, mask, labels, labels != self.tok.pad_id)

    def recognise(self, model, split: str, index: np.ndarray, cfg, device) -> list[str]:
        batch = self.collate(split, index).to(device)
        if self.is_ctc:
            log_probs, mask = model(batch.src, batch.src_mask)
            if cfg.beam == 1:
                ids = ctc.greedy(log_probs, mask)
            else:
                ids = [ctc.prefix_beam_search(lp[: int(m.sum())], cfg.beam)[0][0] for lp, m in zip(log_probs, mask)]
        else:
            ids = [h[0].tokens for h in search(model, batch.src, batch.src_mask, cfg, bos=self.tok.bos_id,
                                               eos=self.tok.eos_id)]
        return self.tok.decode(ids)

    def alignments(self, model, split: str, index: np.ndarray, cfg, device) -> list[Alignment]:
        """Output tokens x encoder frames: attention weights, or for CTC the Viterbi best path."""
        hyps = self.recognise(model, split, index, cfg, device)
        batch = self.collate(split, index).to(device)
        out = []
        with torch.no_grad():
            memory, mem_mask = (model(batch.src, batch.src_mask) if self.is_ctc
                                else model.encode(batch.src, batch.src_mask))
            for row, hyp in enumerate(hyps):
                ids = self.tok.encode([hyp])[0]
                frames = int(mem_mask[row].sum())
                if self.is_ctc:  # memory holds the frame log-probabilities here
                    path = ctc.viterbi(memory[row, :frames].cpu(), ids)
                    weights, k = np.zeros((len(ids), frames), dtype=np.float32), -1
                    for s, (label, prev) in enumerate(zip(path, [ctc.BLANK] + path[:-1])):
                        k += int(label != ctc.BLANK and label != prev)
                        if label != ctc.BLANK:
                            weights[k, s] = 1.0
                    rows = self.tok.pieces(ids)
                else:
                    tgt_in = torch.tensor([[self.tok.bos_id] + ids], device=device)
                    w = model.decoder.alignment(tgt_in, memory[row: row + 1, :frames], mem_mask[row: row + 1, :frames])
                    weights, rows = w[0].float().cpu().numpy(), self.tok.pieces(ids) + ["</s>"]
                out.append(Alignment([str(s) for s in range(frames)], rows, weights))
        return out

    def evaluate(self, model, split: str, search_cfg, accelerator, generate: bool = True) -> dict:
        import jiwer

        mine = my_batches(self, split, search_cfg.max_tokens, accelerator)
        metrics = {"loss": mean_loss(self, model, split, mine, accelerator)}
        if not generate:
            return metrics
        with torch.no_grad():
            pairs = [p for index in mine
                     for p in zip(index.tolist(), self.recognise(model, split, index, search_cfg, accelerator.device))]
        pairs = gather_pairs(pairs)
        refs = [self.data[split]["text"][i] for i, _ in pairs]
        hyps = [h if h.strip() else "<empty>" for _, h in pairs]
        ter = jiwer.wer(refs, hyps)
        return metrics | {"ter": round(100 * ter, 2), "samples": list(zip(refs[:3], hyps[:3], refs[:3]))}


def spec_augment(feats: torch.Tensor, mask: torch.Tensor, freq_masks: int, freq_width: int, time_masks: int,
                 time_width: float) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) without warping: zero random mel bands and time spans of each
    utterance (B,S,F). Draws from torch's RNG, so exact resume covers it."""
    b, s, f = feats.shape
    keep = torch.ones(b, s, f, dtype=torch.bool)
    bins, frames = torch.arange(f)[None, :], torch.arange(s)[None, :]
    lengths = mask.sum(1, keepdim=True)  # (B,1)
    for _ in range(freq_masks):
        width = torch.randint(0, freq_width + 1, (b, 1))
        start = (torch.rand(b, 1) * (f - width + 1)).long()
        keep &= ~((bins >= start) & (bins < start + width))[:, None, :]  # (B,1,F)
    for _ in range(time_masks):
        width = (torch.rand(b, 1) * time_width * lengths).long()
        start = (torch.rand(b, 1) * (lengths - width + 1)).long()
        keep &= ~((frames >= start) & (frames < start + width))[:, :, None]  # (B,S,1)
    return feats * keep
