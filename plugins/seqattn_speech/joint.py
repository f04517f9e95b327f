"""Joint CTC/attention (Watanabe et al. 2017, as in ESPnet): one encoder, a CTC head on its frames
and any attention decoder. Training minimises ``w * CTC + (1 - w) * cross-entropy``; beam search
scores each hypothesis ``h`` with ``(1 - d) log p_att(h) + d log p_ctc(h)``, adding CTC *prefix*
scores token by token (the decoder wrapper below), so the monotonic CTC alignment vetoes
hypotheses that skip or repeat parts of the input.

CTC prefix score of ``h``: psi(h) = log sum over frame paths whose labelling *starts* with ``h``.
With r^n_s(h), r^b_s(h) the probabilities that frames 0..s read exactly ``h``, ending in a
non-blank or a blank frame, for every next label ``c`` at once (``phi`` excludes r^n when ``c``
repeats the last label, which needs a blank in between):

    phi_s(c)     = r^b_s(h) + [c != last(h)] r^n_s(h)
    r^n_s(h+c)   = p_s(c) (r^n_{s-1}(h+c) + phi_{s-1}(c))
    r^b_s(h+c)   = p_s(blank) (r^b_{s-1}(h+c) + r^n_{s-1}(h+c))
    psi(h+c)     = sum_s p_s(c) phi_{s-1}(c),        psi(h+eos) = r^n_{S-1}(h) + r^b_{S-1}(h)

Both recursions are linear in their unknown, so all frames are solved at once (log space,
:func:`seqattn_attention.ctc.linear_recurrence`); the cost per step is O(rows x vocabulary x
frames), which suits speech vocabularies (characters, words, small subword sets).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.interfaces import Decoder, expand_beam
from seqattn.spec import Spec
from seqattn_attention.ctc import MASKED, NEG, linear_recurrence, shift_frames
from seqattn_speech.ctc import BLANK


class JointCTCAttention(nn.Module):
    def __init__(self, input_dim: int, vocab_size: int, eos_id: int, *, encoder: Spec("encoder"),
                 decoder: Spec("decoder"), ctc_weight: float = 0.3, decode_ctc_weight: float = 0.3) -> None:
        super().__init__()
        self.encoder = encoder.build(input_dim)
        head = nn.Linear(self.encoder.out_dim, vocab_size)
        self.decoder = CTCPrefixDecoder(decoder.build(vocab_size, self.encoder.out_dim), head, decode_ctc_weight,
                                        eos_id)
        self.ctc_weight = ctc_weight

    def encode(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(src, src_mask)  # (B,S,D), (B,S)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, select: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> decoder logits at ``select`` (N,V), CTC frame log-probabilities (B,S,V) and their mask."""
        memory, mem_mask = self.encoder(src, src_mask)
        hidden = self.decoder(tgt_in, memory, mem_mask)[select]  # (B,T,D) -> (N,D)
        return self.decoder.output(hidden), self.decoder.ctc_log_probs(memory), mem_mask


class CTCPrefixDecoder(Decoder):
    """Wraps an attention decoder: training and alignments go to it unchanged; ``step`` returns
    the joint next-token scores (so :meth:`log_scores` is the identity)."""

    def __init__(self, inner: Decoder, head: nn.Linear, weight: float, eos_id: int) -> None:
        super().__init__()
        self.inner, self.head, self.weight, self.eos = inner, head, weight, eos_id

    @property
    def embed_tokens(self):
        return self.inner.embed_tokens

    def forward(self, tgt_in: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        return self.inner(tgt_in, memory, memory_mask)

    def output(self, hidden: Tensor) -> Tensor:
        return self.inner.output(hidden)

    def alignment(self, tgt_in: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        return self.inner.alignment(tgt_in, memory, memory_mask)

    def ctc_log_probs(self, memory: Tensor) -> Tensor:
        return torch.log_softmax(self.head(memory).float(), dim=-1)  # (B,S,V)

    def log_scores(self, logits: Tensor) -> Tensor:
        return logits

    def init_state(self, memory: Tensor, memory_mask: Tensor, beam: int = 1) -> dict:
        inner = self.inner.init_state(memory, memory_mask, beam)
        lp = expand_beam(self.ctc_log_probs(memory).double(), beam)  # (B,S,V) -> (N,S,V)
        memory_mask = expand_beam(memory_mask, beam)  # (N,S)
        lp = lp.masked_fill(~memory_mask[..., None], MASKED)
        lp[..., BLANK] = lp[..., BLANK].masked_fill(~memory_mask, 0.0)  # padding frames are certain blanks
        blank = lp[..., BLANK].cumsum(-1).clamp(min=NEG)  # r^b_s(empty prefix) (N,S)
        n = lp.size(0)
        return {"dec": inner, "_lp": lp.transpose(1, 2).contiguous(),  # (N,V,S)
                "rn": torch.full_like(blank, NEG), "rb": blank, "psi": blank.new_zeros(n),
                "last": torch.full((n,), -1, dtype=torch.long, device=memory.device), "_empty": True}

    def step(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
        if not state["_empty"]:  # the prefix grew by `tokens`: keep its row of last step's candidates
            rows = torch.arange(tokens.size(0), device=tokens.device)
            state["rn"], state["rb"] = state["cand_rn"][rows, tokens], state["cand_rb"][rows, tokens]  # (N,S)
            state["psi"], state["last"] = state["cand_psi"][rows, tokens], tokens
        logits, state["dec"] = self.inner.step(tokens, state["dec"])
        cand_psi = self._extend(state)  # (N,V)
        end = torch.logaddexp(state["rn"][:, -1], state["rb"][:, -1])  # psi(h + eos) = log p_ctc(h)
        cand_psi[:, self.eos] = end
        cand_psi[:, BLANK] = NEG
        state["cand_psi"], state["_empty"] = cand_psi, False
        ctc = (cand_psi - state["psi"][:, None]).float()  # (N,V)
        att = torch.log_softmax(logits.float(), dim=-1)
        return ((1 - self.weight) * att + self.weight * ctc).clamp(min=-1e9), state

    def _extend(self, state: dict) -> Tensor:
        """r^n, r^b (N,V,S) and psi (N,V) of every one-token extension of each row's prefix."""
        lp = state["_lp"]  # (N,V,S)
        rn, rb = state["rn"][:, None, :], state["rb"][:, None, :]  # (N,1,S)
        vocab = torch.arange(lp.size(1), device=lp.device)
        repeat = (vocab[None, :] == state["last"][:, None])[..., None]  # (N,V,1)
        phi = torch.logaddexp(rb, torch.where(repeat, NEG, rn))  # (N,V,S)
        phi_prev = shift_frames(phi, 0.0 if state["_empty"] else NEG)  # phi_{s-1}; phi_{-1}: the empty prefix
        enter = (lp + phi_prev).clamp(min=NEG)
        cand_rn = linear_recurrence(lp, enter)
        blank = lp[:, BLANK: BLANK + 1]  # (N,1,S)
        cand_rb = linear_recurrence(blank.expand_as(lp), (blank + shift_frames(cand_rn, NEG)).clamp(min=NEG))
        state["cand_rn"], state["cand_rb"] = cand_rn, cand_rb
        return torch.logsumexp(enter, dim=-1)

    def reorder_state(self, state: dict, index: Tensor) -> dict:
        rest = super().reorder_state({k: v for k, v in state.items() if k != "dec"}, index)
        return rest | {"dec": self.inner.reorder_state(state["dec"], index)}
