"""The component contracts. Shapes use B = batch, S = source length, T = target length,
H = heads, D = model width, V = vocabulary size, N = rows (batch x beam) during search.

ONE MASK CONVENTION everywhere: a boolean mask is ``True`` where a position is real and may be
attended, ``False`` for padding (the same sense as ``scaled_dot_product_attention``'s bool mask).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from seqattn.dropout import dropout as _dropout


class AttentionScorer(nn.Module):
    """Scores queries against keys and returns the attention-weighted values.

    ``forward(query (B,H,T,Dq), key (B,H,S,Dk), value (B,H,S,Dv), mask, causal, need_weights)``
    returns ``(context (B,H,T,Dv), weights (B,H,T,S) or None)``. ``mask`` is boolean and
    broadcastable to ``(B,H,T,S)``; ``causal`` lets query ``t`` see keys ``<= t + S - T``.
    A factory receives the per-head query and key sizes as positional arguments:
    ``factory(query_dim, key_dim, **recipe_keywords)``.

    Content scorers implement only :meth:`score`; the generic path here masks, normalises and
    takes the weighted sum. A scorer with a fused kernel overrides :meth:`forward`.

    Stateful scorers (location-based: Gaussian mixtures, location-aware) set ``stateful = True``
    and keep what one decoder step passes to the next in the ``state`` dict they are given,
    mutating it in place (tensors with batch rows first, so search can reorder them). With
    ``state=None`` they treat the ``T`` queries as consecutive steps from the start. Scorers
    whose weights are not a distribution over keys set ``normalised = False``; scorers whose
    weights ignore key content (purely positional) set ``content = False``.

    Work that depends only on the keys (Bahdanau's ``U k``, Luong's ``W k``) goes in
    :meth:`project_keys`: decoders pass one ``state`` dict per source for all their steps, and the
    generic path computes the projection once per state (kept under ``"_keys"``; entries whose
    name starts with ``_`` are fixed per source row and never reordered by search) instead of once
    per decoding step.
    """

    stateful = False
    normalised = True
    content = True

    def project_keys(self, key: Tensor) -> Tensor:
        """Key-side work shared by every query, ``(B,H,S,Dk) -> (B,H,S,*)``; identity by default."""
        return key

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        """Unnormalised scores ``(B,H,T,S)`` of queries against :meth:`project_keys`' output."""
        raise NotImplementedError

    def cached(self, state: dict | None, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per decoder state (per source), stored as ``state[name]``."""
        if state is None:
            return compute()
        if name not in state:
            state[name] = compute()
        return state[name]

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
                causal: bool = False, need_weights: bool = False, dropout: float = 0.0,
                state: dict | None = None):
        scores = self.score(query, self.cached(state, "_keys", lambda: self.project_keys(key)))  # (B,H,T,S)
        keep = causal_mask(query.size(-2), key.size(-2), query.device) if causal else None
        if mask is not None:
            keep = mask if keep is None else keep & mask
        if keep is not None:
            scores = scores.masked_fill(~keep, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(value.dtype)  # (B,H,T,S)
        dropped = _dropout(weights, dropout, self.training)
        context = dropped @ value  # (B,H,T,S) @ (B,H,S,Dv) -> (B,H,T,Dv)
        return context, (weights if need_weights else None)


def causal_mask(t: int, s: int, device: torch.device) -> Tensor:
    """(T, S) boolean: query i may see key j iff j <= i + S - T."""
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(s - t)


class Encoder(nn.Module):
    """``forward(src, src_mask (B,S)) -> (memory (B,S',D), memory_mask (B,S'))``.

    ``src`` is ``(B,S)`` token ids for text or ``(B,S,F)`` features for speech and vision: the
    encoder owns its input embedding, so attention and decoders only ever see ``(B,S,D)``.
    ``S'`` may differ from ``S`` (subsampling). ``out_dim`` is ``D``. ``embed_tokens`` is the
    token embedding when there is one (``None`` otherwise), so a model can share it.
    """

    out_dim: int
    embed_tokens: nn.Embedding | None = None


class Decoder(nn.Module):
    """An autoregressive decoder over token ids, used in training and by :mod:`seqattn.search`.

    - ``forward(tgt_in (B,T), memory (B,S,D) | None, memory_mask (B,S) | None) -> hidden (B,T,Dh)``
      with teacher forcing (position t sees tokens <= t).
    - ``output(hidden (...,Dh)) -> logits (...,V)``. The built-in decoders compute it with
      :func:`seqattn.logits.project`, whose logits :func:`seqattn.loss.smoothed_cross_entropy`
      overwrites with their gradient in its backward: read them before the backward.
    - ``init_state(memory (B,S,D), memory_mask (B,S), beam=1) -> state``: the incremental state
      for ``N = B * beam`` rows, row ``b * beam + k`` reading source ``b`` (beam search asks for
      ``beam`` rows per source; a decoder may store per-source tensors once, see below).
    - ``step(tokens (N,), state) -> (logits (N,V), state)``: one position, reusing cached
      keys/values; never recomputes the prefix.
    - ``log_scores(logits (N,V)) -> (N,V)``: what search adds to a hypothesis' score for each next
      token; ``log_softmax`` unless the decoder's ``step`` already returns final scores (e.g. a
      joint CTC/attention decoder, whose scores are a weighted sum of two models).
    - ``reorder_state(state, index (N',)) -> state``: select rows (beam reordering/expansion).
    - ``alignment(tgt_in (B,T), memory, memory_mask) -> (B,T,S)``: the cross-attention weights
      under teacher forcing, for inspection (recomputed on demand, never during search).
    The state is a dict of tensors (or nested dicts/lists of them) with rows in dimension 0; a
    decoder that keeps anything else there (the Transformer's all-layer ``KVCache``) reorders it
    in its own ``reorder_state``. Entries whose key starts with ``_`` are never reordered:
    scalars such as the step count, and what is fixed per source sentence (the memory, its mask,
    cross-attention keys/values) —
    reordering only ever moves rows among the beams of one sentence, so those entries stay valid
    without a copy per step, whether stored per row (:func:`expand_beam`) or once per source.
    Search runs under ``torch.inference_mode``: what a decoder makes there and keeps afterwards
    (a cache, a buffer) can be read but not written or saved for backward outside it, so training
    must not reuse it (see :class:`seqattn.buffer.ReusableBuffer`).
    """

    embed_tokens: nn.Embedding | None = None

    def log_scores(self, logits: Tensor) -> Tensor:
        return torch.log_softmax(logits.float(), dim=-1)

    def reorder_state(self, state: dict, index: Tensor) -> dict:
        return _select_rows(state, index)


def expand_beam(x: Tensor, beam: int) -> Tensor:
    """(B,...) -> (B*beam,...): each row repeated ``beam`` times in place (row b*beam+k is b)."""
    return x.repeat_interleave(beam, dim=0) if beam > 1 else x


def _select_rows(state: Any, index: Tensor) -> Any:
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {k: (v if k.startswith("_") else _select_rows(v, index)) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_select_rows(v, index) for v in state)
    return state


class Tokenizer:
    """Text <-> ids. Trained from the recipe's data, saved in the library's own format.

    ``train(texts, directory)`` learns the vocabulary and saves it under ``directory``;
    ``load(directory)`` restores it. Special ids: ``pad_id``, ``bos_id``, ``eos_id``, ``unk_id``.
    ``vocab_size`` is the planned size before training (from the recipe) and the real one after.
    """

    pad_id: int
    bos_id: int
    eos_id: int
    unk_id: int
    vocab_size: int

    def train(self, texts: Iterable[str], directory: Path) -> None:
        raise NotImplementedError

    def load(self, directory: Path) -> None:
        raise NotImplementedError

    def train_or_load(self, directory: Path, texts: Callable[[], Iterable[str]]) -> None:
        """Reload from ``directory`` when a run saved the tokenizer there; otherwise train on
        ``texts()`` in ``directory.tmp`` and rename it, so a killed run never leaves half a
        tokenizer behind (``train`` leaves the tokenizer loaded)."""
        if directory.is_dir():
            self.load(directory)
            return
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.train(texts(), tmp)
        tmp.rename(directory)

    def encode(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def decode(self, ids: list[list[int]]) -> list[str]:
        raise NotImplementedError

    def pieces(self, ids: list[int]) -> list[str]:
        """The surface piece of each id (for labelling plots and inspection)."""
        raise NotImplementedError


class Task:
    """Data + loss + evaluation for one kind of job; the training loop is shared.

    - ``setup(run_dir, fit)``: ``fit=True`` trains (or reloads from ``run_dir``) tokenizers and
      reads the data; ``fit=False`` only reloads what a finished run saved (for ``translate``).
    - ``build_model(spec)``: builds the model from the recipe's ``model`` component; before
      ``setup`` it uses the vocabulary sizes the recipe plans (``seqattn check``).
    - ``batches(split, epoch, seed, max_tokens) -> list``: the deterministic batch list.
    - ``batch_tokens(batch) -> int``: target tokens that the loss counts (known before forward).
    - ``loss(model, batch) -> Tensor``: the summed loss over those tokens.
    - ``evaluate(model, split, search, accelerator) -> dict``: metrics (e.g. ``{"bleu": ...}``).
    """

    def setup(self, run_dir: Path, fit: bool) -> None:
        raise NotImplementedError

    def build_model(self, spec) -> nn.Module:
        raise NotImplementedError

    def batches(self, split: str, epoch: int, seed: int, max_tokens: int) -> list:
        raise NotImplementedError

    def batch_tokens(self, batch) -> int:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch) -> Tensor:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, split: str, search, accelerator) -> dict:
        raise NotImplementedError
