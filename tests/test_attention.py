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


@pytest.mark.parametrize("inner", ["additive", "bilinear", "gaussian", "location"])
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
