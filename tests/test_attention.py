"""Every built-in scorer passes the conformance kit; the fused path equals the generic one."""

from __future__ import annotations

import pytest
import torch

from seqattn.interfaces import AttentionScorer
from seqattn.plugins import get_registry
from seqattn.recipe import Validator

pytest_plugins = ["seqattn.testing.plugin"]


@pytest.mark.parametrize("name", get_registry().names("attention"))
def test_builtin_scorers_conform(name, scorer_conformance):
    spec = Validator(get_registry()).component(name, "attention", "attention")  # defaults filled in
    scorer_conformance(spec.build)


@pytest.mark.parametrize("inner", ["additive", "bilinear", "gaussian", "location", "ctc"])
def test_multihead_wraps_any_scorer(inner, scorer_conformance):
    spec = Validator(get_registry()).component({"name": "multihead", "heads": 2, "scorer": inner}, "attention", "a")
    scorer_conformance(spec.build)


def test_fused_scaled_dot_equals_generic_path():
    scorer = get_registry().get("attention", "scaled_dot").factory(8, 8)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 8, generator=g) for _ in range(3))
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])[:, None, None, :]
    fused, _ = scorer(q, k, v, mask=mask)
    generic, _ = AttentionScorer.forward(scorer, q, k, v, mask=mask)
    torch.testing.assert_close(fused, generic)
    fused_c, _ = scorer(q, k, v, causal=True)
    generic_c, _ = AttentionScorer.forward(scorer, q, k, v, causal=True)
    torch.testing.assert_close(fused_c, generic_c)


def test_dot_needs_equal_sizes():
    from seqattn.errors import SeqattnError

    with pytest.raises(SeqattnError, match="equal query and key sizes.*bilinear"):
        get_registry().get("attention", "dot").factory(8, 16)


def _ctc_enter_brute_force(p: torch.Tensor, t: int, s: int) -> float:
    """Sum over every frame labelling of frames 0..s-1 that reads exactly labels 0..t-1 (CTC:
    runs of one label collapse, blanks vanish), times p(t,s). Frame f showing label j scores
    p(j,f); a blank scores 1 - p(j,f) for the last label j read (label 0 before any)."""
    import itertools

    total = 0.0
    for path in itertools.product([None, *range(t)], repeat=s):  # None = blank
        collapsed = [j for i, j in enumerate(path) if j is not None and (i == 0 or path[i - 1] != j)]
        if collapsed != list(range(t)):
            continue
        prob, last = 1.0, 0
        for f, j in enumerate(path):
            if j is None:
                prob *= 1 - p[last][f]
            else:
                prob, last = prob * p[j][f], j
        total += prob
    return total * p[t][s]


def test_ctc_scorer_weights_are_the_ctc_prefix_alignment():
    """The ctc scorer's weight of frame s for query t equals, up to normalisation over s, the
    brute-force probability that label t starts at frame s after labels 0..t-1 were read."""
    torch.manual_seed(0)
    T, S, D = 3, 5, 4
    scorer = get_registry().get("attention", "ctc").factory(D, D).double()
    q, k = torch.randn(1, 1, T, D, dtype=torch.double), torch.randn(1, 1, S, D, dtype=torch.double)
    _, w = scorer(q, k, k, need_weights=True)
    e = (q @ scorer.label(k).transpose(-1, -2))[0, 0] * scorer.scale - scorer.blank(k)[0, 0, :, 0]
    p = torch.sigmoid(e)  # (T,S)
    for t in range(T):
        ref = torch.tensor([_ctc_enter_brute_force(p.tolist(), t, s) for s in range(S)], dtype=torch.double)
        torch.testing.assert_close(w[0, 0, t], ref / ref.sum())
        assert (w[0, 0, t, :t] == 0).all(), "label t cannot start before frame t"


def test_ctc_scorer_labels_beyond_the_frames_attend_to_the_last_frame():
    scorer = get_registry().get("attention", "ctc").factory(4, 4)
    q, k = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])[:, None, None, :]
    _, w = scorer(q, k, k, mask=mask, need_weights=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 1, 4))
    assert w[1, 0, 2:, 1].eq(1).all(), "labels 2 and 3 cannot fit into 2 frames: they sit on the last real frame"
