"""Search: incremental decoding equals the full forward; batched beam search equals a plain,
per-sentence reference that recomputes the whole prefix at every step."""

from __future__ import annotations

import pytest
import torch

from seqattn.plugins import get_registry
from seqattn.recipe import Validator
from seqattn.search import beam_search, greedy, length_penalty

BOS, EOS, V = 2, 3, 9


def tiny_model(seed: int, norm: str = "pre", positions: str = "sinusoidal", cross: str = "scaled_dot",
               decoder: str = "transformer"):
    layer = {"d_model": 16, "layers": 2, "heads": 2, "ffn": 32, "dropout": 0.0, "norm": norm, "positions": positions}
    raw = {"name": "encoder_decoder", "encoder": {"name": "transformer", **layer},
           "decoder": {"name": "transformer", "cross_attention": cross, **layer}}
    if decoder != "transformer":
        raw["encoder"] = {"name": "rnn", "embed_dim": 16, "hidden": 8, "layers": 2, "dropout": 0.0}
        raw["decoder"] = {"name": decoder, "embed_dim": 16, "hidden": 16, "layers": 2, "dropout": 0.0,
                          "attention": cross}
    spec = Validator(get_registry()).component(raw, "model", "model")
    torch.manual_seed(seed)
    model = spec.build(V, V).eval()
    with torch.no_grad():  # make EOS likely enough that hypotheses end at different lengths
        model.decoder.embed_tokens.weight[EOS] *= 3
    return model


def source(seed: int, batch: int = 3):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 7, (batch,), generator=g)
    src = torch.randint(4, V, (batch, int(lengths.max())), generator=g)
    mask = torch.arange(src.size(1))[None, :] < lengths[:, None]
    return src.masked_fill(~mask, 0), mask


@torch.no_grad()
def reference_beam(model, src, mask, beam, alpha, a, b, min_len=1):
    """Per sentence, no cache, fairseq's rules: EOS in the top `beam` of 2*beam candidates
    finalises (until `beam` have ended), the best `beam` others continue."""
    out = []
    for i in range(src.size(0)):
        s, m = src[i: i + 1, : int(mask[i].sum())], mask[i: i + 1, : int(mask[i].sum())]
        memory, mem_mask = model.encode(s, m)
        limit = int(a * m.sum() + b)
        alive, done = [(0.0, [])], []
        for t in range(limit + 1):
            cands = []
            for score, toks in alive:
                hidden = model.decoder(torch.tensor([[BOS] + toks]), memory, mem_mask)
                logp = torch.log_softmax(model.decoder.output(hidden[0, -1]).float(), -1)
                for v in range(V):
                    lp = float(logp[v]) if t < limit or v == EOS else float("-inf")
                    if t < min_len and v == EOS:
                        lp = float("-inf")
                    cands.append((score + lp, toks + [v]))
            cands.sort(key=lambda c: -c[0])
            nxt = []
            for rank, (sc, toks) in enumerate(cands[: 2 * beam]):
                if toks[-1] == EOS:
                    if rank < beam and len(done) < beam and sc > float("-inf"):
                        done.append((sc / length_penalty(len(toks), alpha), toks[:-1]))
                elif len(nxt) < beam:
                    nxt.append((sc, toks))
            if len(done) >= beam:
                break
            alive = nxt
        out.append(sorted(done, key=lambda d: -d[0]))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beam", [2, 4])
@pytest.mark.parametrize("decoder, cross", [("transformer", "scaled_dot"), ("transformer", "additive"),
                                            ("transformer", "gaussian"), ("rnn_luong", "location")])
def test_beam_search_matches_reference(seed, beam, decoder, cross):
    """Transformer: fused and generic scorers share keys/values among a source's beams; the
    stateful Gaussian keeps them per row."""
    model = tiny_model(seed, cross=cross, decoder=decoder)
    src, mask = source(seed)
    got = beam_search(model, src, mask, bos=BOS, eos=EOS, beam=beam, length_penalty_alpha=0.6, max_len_a=1.0,
                      max_len_b=3, n_best=beam)
    want = reference_beam(model, src, mask, beam, 0.6, 1.0, 3)
    for g, w in zip(got, want):
        assert [h.tokens for h in g] == [toks for _, toks in w]
        assert [h.score for h in g] == pytest.approx([sc for sc, _ in w], abs=1e-4)


def test_greedy_matches_beam_of_one_reference():
    model = tiny_model(5)
    src, mask = source(5)
    got = greedy(model, src, mask, bos=BOS, eos=EOS, max_len_a=1.0, max_len_b=3)
    want = reference_beam(model, src, mask, 1, 0.0, 1.0, 3)
    assert [g[0].tokens for g in got] == [w[0][1] for w in want]


def assert_steps_equal_full(model, steps: int, batch: int = 3) -> dict:
    """Teacher-forced logits over ``steps`` target positions equal one ``step`` at a time."""
    src, mask = source(3, batch)
    memory, mem_mask = model.encode(src, mask)
    tgt = torch.randint(4, V, (src.size(0), steps))
    full = model.decoder.output(model.decoder(tgt, memory, mem_mask))  # (B,T,V)
    state = model.decoder.init_state(memory, mem_mask)
    for t in range(steps):
        logits, state = model.decoder.step(tgt[:, t], state)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-4)
    return state


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
@pytest.mark.parametrize("cross", ["scaled_dot", "dot", "bilinear", "additive", "gaussian", "location", "ctc"])
def test_incremental_steps_equal_full_forward(norm, positions, cross):
    state = assert_steps_equal_full(tiny_model(3, norm, positions, cross), 6)
    assert state["self"].len == 6  # the cache grew one position per step


@pytest.mark.parametrize("cross", ["scaled_dot", "gaussian"])
def test_incremental_steps_without_padding_need_no_mask(cross):
    """One sentence has no padding: the Transformer's steps then attend without a mask."""
    state = assert_steps_equal_full(tiny_model(3, "post", cross=cross), 4, batch=1)
    assert state["_mask"] is None


@pytest.mark.parametrize("decoder", ["rnn_bahdanau", "rnn_luong"])
@pytest.mark.parametrize("cross", ["additive", "bilinear", "gaussian", "location", "ctc", "multihead"])
def test_rnn_incremental_steps_equal_full_forward(decoder, cross):
    assert_steps_equal_full(tiny_model(4, cross=cross, decoder=decoder), 5)


def test_survivors_stay_in_their_parents_slot_where_they_can():
    from seqattn.search import _stay_in_place

    parent = torch.tensor([[2, 2, 0, 1], [3, 3, 3, 3], [1, 0, 3, 2], [0, 2, 0, 0]])  # survivors in rank order
    order = _stay_in_place(parent)  # (B,K): the survivor placed in each slot
    assert sorted(order[0].tolist()) == [0, 1, 2, 3]  # a permutation
    assert order.tolist() == [[2, 3, 0, 1], [1, 2, 3, 0], [1, 0, 3, 2], [0, 2, 1, 3]]
    slots = parent.gather(1, order)  # the parent of the survivor in each slot
    stays = slots == torch.arange(4)
    assert stays.sum(1).tolist() == [3, 1, 4, 2]  # one per distinct parent


@pytest.mark.parametrize("index", [[0, 0, 2, 1, 4, 4], [5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [1, 3, 5]])
def test_cache_reorder_equals_row_selection(index):
    """In place for beam reordering (sources read before any row is written), a new buffer otherwise."""
    from seqattn_transformer.layers import KVCache

    torch.manual_seed(0)
    cache = KVCache(layers=2, grow=2)  # 6 rows, 2 heads, head size 4; the buffer grows at the fourth step
    for _ in range(4):
        got = [[x.clone() for x in cache.append(layer, torch.randn(6, 2, 2, 4))] for layer in range(2)]
        cache.advance()
    assert cache.buf.size(0) == 6 and cache.len == 4
    idx = torch.tensor(index)
    out = cache.reorder(idx)
    assert out.len == 4
    for layer, (keys, values) in enumerate(got):  # (N,H,t,Dh) each
        torch.testing.assert_close(out.buf[:4, layer, 0].permute(1, 2, 0, 3), keys[idx], rtol=0, atol=0)  # (N',H,t,Dh)
        torch.testing.assert_close(out.buf[:4, layer, 1].permute(1, 2, 0, 3), values[idx], rtol=0, atol=0)


def test_searches_reuse_the_cache_memory_unless_it_is_held():
    """A Transformer decoder's self-attention cache is written into the same memory search after
    search, but never into memory a state still holds; training lets it go."""
    model = tiny_model(6)
    src, mask = source(6)
    first = beam_search(model, src, mask, bos=BOS, eos=EOS, beam=3)
    memory = model.decoder.cache_memory
    address = memory.flat.data_ptr()
    assert beam_search(model, src, mask, bos=BOS, eos=EOS, beam=3) == first
    assert memory.flat.data_ptr() == address
    with torch.inference_mode():  # as in a search
        state = model.decoder.init_state(*model.encode(src, mask))
        _, state = model.decoder.step(torch.full((src.size(0),), BOS), state)
        held = state["self"].buf
        assert held.data_ptr() == address
        kept = held.clone()
    assert beam_search(model, src, mask, bos=BOS, eos=EOS, beam=3) == first
    assert torch.equal(held, kept)  # the search took fresh memory
    model.train()
    assert memory.flat is None
