"""Conformance checks for attention scorers, for plugin authors.

Plain functions (``check_scorer(factory)`` runs them all) and an opt-in pytest plugin::

    # conftest.py of your plugin
    pytest_plugins = ["seqattn.testing.plugin"]

    def test_my_scorer(scorer_conformance):
        scorer_conformance(MyScorer)

A factory is called as ``factory(query_dim, key_dim)`` (per-head sizes), as the built-in
multi-head attention does.
"""

from __future__ import annotations

import io
from typing import Callable

import torch

from seqattn.interfaces import causal_mask

B, H, T, S, D = 3, 2, 5, 7, 8


def _inputs(seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, D, generator=g).to(dtype)
    k = torch.randn(B, H, S, D, generator=g).to(dtype)
    v = torch.randn(B, H, S, D, generator=g).to(dtype)
    lengths = torch.tensor([S, S - 2, 1])
    mask = (torch.arange(S)[None, :] < lengths[:, None])[:, None, None, :]  # (B,1,1,S)
    return q, k, v, mask


def _build(factory: Callable, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return factory(D, D).eval()


def check_masked_keys_get_zero_weight(factory: Callable) -> None:
    scorer = _build(factory)
    q, k, v, mask = _inputs()
    _, w = scorer(q, k, v, mask=mask, need_weights=True)
    assert w is not None, "need_weights=True must return the weights"
    assert w.shape == (B, H, T, S), f"weights have shape {tuple(w.shape)}, expected {(B, H, T, S)}"
    assert (w.masked_select(~mask.expand_as(w)) == 0).all(), "a masked key received non-zero weight"


def check_weights_sum_to_one(factory: Callable) -> None:
    scorer = _build(factory)
    if not scorer.normalised:
        return
    q, k, v, mask = _inputs()
    _, w = scorer(q, k, v, mask=mask, need_weights=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, T), msg="attention weights do not sum to 1")


def check_padding_invariance(factory: Callable) -> None:
    """Extra padded keys change nothing; the fused and weight-returning paths agree."""
    scorer = _build(factory)
    q, k, v, mask = _inputs()
    out, _ = scorer(q, k, v, mask=mask)
    pad = torch.randn(B, H, 3, D)
    wide_mask = torch.cat([mask, torch.zeros(B, 1, 1, 3, dtype=torch.bool)], -1)
    out2, _ = scorer(q, torch.cat([k, pad], 2), torch.cat([v, pad], 2), mask=wide_mask)
    torch.testing.assert_close(out, out2, msg="extra padding changed the output")
    out3, _ = scorer(q, k, v, mask=mask, need_weights=True)
    torch.testing.assert_close(out, out3, msg="need_weights=True changed the output")


def check_incremental_equals_full(factory: Callable) -> None:
    """Content scorers: step-by-step causal self-attention (query t over keys <= t) equals one
    causal call. (Stateful scorers are checked step by step by the next check.)"""
    scorer = _build(factory)
    if scorer.stateful:
        return
    q, k, v, mask = _inputs()
    full, _ = scorer(q, k[:, :, :T], v[:, :, :T], causal=True)
    for t in range(T):
        step, _ = scorer(q[:, :, t: t + 1], k[:, :, : t + 1], v[:, :, : t + 1])
        torch.testing.assert_close(step[:, :, 0], full[:, :, t], msg=f"step {t} differs from the full causal call")
    _, w = scorer(q, k[:, :, :T], v[:, :, :T], causal=True, need_weights=True)
    assert (w.masked_select(~causal_mask(T, T, w.device)) == 0).all(), "causal=True attended to the future"


def check_steps_with_state_equal_full(factory: Callable) -> None:
    """Decoders hand a scorer one ``state`` dict per source for all their steps (stateful scorers
    carry their step-to-step memory in it, any scorer may cache key projections there): one query
    per call with that state equals one call over all queries without a state."""
    scorer = _build(factory)
    q, k, v, mask = _inputs()
    full, _ = scorer(q, k, v, mask=mask)
    state: dict = {}
    for t in range(T):
        step, _ = scorer(q[:, :, t: t + 1], k, v, mask=mask, state=state)
        torch.testing.assert_close(step[:, :, 0], full[:, :, t], msg=f"step {t} with a state differs from the stateless call")


def check_gradients_reach_every_parameter(factory: Callable) -> None:
    scorer = _build(factory).train()
    q, k, v, mask = _inputs()
    q.requires_grad_(True)
    out, _ = scorer(q, k, v, mask=mask)
    out.square().sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0, "no gradient reaches the query"
    for name, p in scorer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"no gradient for {name}"


def check_bfloat16_agrees(factory: Callable, atol: float = 0.1) -> None:
    scorer = _build(factory)
    q, k, v, mask = _inputs()
    ref, _ = scorer(q, k, v, mask=mask)
    low, _ = scorer.to(torch.bfloat16)(*(x.to(torch.bfloat16) for x in (q, k, v)), mask=mask)
    assert low.dtype == torch.bfloat16, "bfloat16 inputs should give a bfloat16 output"
    torch.testing.assert_close(low.float(), ref, atol=atol, rtol=0.05, msg="bfloat16 disagrees with float32")


def check_deterministic(factory: Callable) -> None:
    q, k, v, mask = _inputs()
    a, _ = _build(factory, seed=3)(q, k, v, mask=mask)
    b, _ = _build(factory, seed=3)(q, k, v, mask=mask)
    assert torch.equal(a, b), "same seed, same inputs, different outputs"


def check_state_dict_round_trip(factory: Callable) -> None:
    a = _build(factory, seed=1)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    b = _build(factory, seed=2)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    q, k, v, mask = _inputs()
    torch.testing.assert_close(a(q, k, v, mask=mask)[0], b(q, k, v, mask=mask)[0], msg="state_dict did not round-trip")


CHECKS = [check_masked_keys_get_zero_weight, check_weights_sum_to_one, check_padding_invariance,
          check_incremental_equals_full, check_steps_with_state_equal_full, check_gradients_reach_every_parameter,
          check_bfloat16_agrees, check_deterministic, check_state_dict_round_trip]


def check_scorer(factory: Callable) -> None:
    """Run every check; raises AssertionError naming the first that fails."""
    for check in CHECKS:
        check(factory)
