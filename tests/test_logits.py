import copy

import torch
import torch.nn.functional as F

from seqattn.buffer import ReusableBuffer
from seqattn.logits import consumable, project
from seqattn.loss import smoothed_cross_entropy


def _step(hidden, weight, target, buffer):
    """One projection + loss forward/backward; returns the loss, the gradients and the logits' address."""
    h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    logits = project(h, w, buffer) if buffer is not None else h @ w.t()
    address = logits.data_ptr()
    loss = smoothed_cross_entropy(logits, target, 0.1)
    loss.backward()
    return loss.detach(), h.grad, w.grad, address


def test_projection_and_loss_match_the_plain_product_and_reuse_memory():
    torch.manual_seed(0)
    weight, buffer = torch.randn(50, 16), ReusableBuffer()
    addresses = []
    for rows in (40, 40, 25, 40):  # smaller requests reuse the buffer's memory too
        hidden, target = torch.randn(rows, 16), torch.randint(0, 50, (rows,))
        ref = _step(hidden, weight, target, None)
        ours = _step(hidden, weight, target, buffer)
        assert torch.allclose(ours[0], ref[0], atol=1e-4)
        assert torch.allclose(ours[1], ref[1], atol=1e-5) and torch.allclose(ours[2], ref[2], atol=1e-5)
        addresses.append(ours[3])
    assert len(set(addresses)) == 1


def test_buffer_is_not_reused_while_held_and_grows():
    weight, buffer = torch.randn(7, 4), ReusableBuffer()
    with torch.no_grad():
        first = project(torch.randn(3, 4), weight, buffer)
        kept = first.clone()
        second = project(torch.randn(3, 4), weight, buffer)  # `first` still held: fresh memory
        assert second.data_ptr() != first.data_ptr() and torch.equal(first, kept)
        del first, second
        again = project(torch.randn(3, 4), weight, buffer)
        address = again.data_ptr()
        del again
        big = project(torch.randn(30, 4), weight, buffer)  # larger than the buffer: a new one
        assert big.shape == (30, 7) and big.data_ptr() != address
        del big
        assert project(torch.randn(30, 4), weight, buffer).shape == (30, 7)


def test_buffer_filled_by_a_search_is_replaced_for_training():
    """Searches run under inference mode, whose tensors cannot be written or saved for backward
    outside it: a buffer they filled must not be handed to a training step."""
    torch.manual_seed(2)
    weight, buffer = torch.randn(7, 4), ReusableBuffer()
    with torch.inference_mode():
        logits = project(torch.randn(3, 4), weight, buffer)  # as greedy() where no pack applies
        assert logits.is_inference()
        del logits
    hidden, target = torch.randn(3, 4), torch.randint(0, 7, (3,))
    ref = _step(hidden, weight, target, None)
    ours = _step(hidden, weight, target, buffer)
    assert torch.allclose(ours[0], ref[0], atol=1e-5) and torch.allclose(ours[2], ref[2], atol=1e-5)
    assert not buffer.flat.is_inference()


def test_loss_overwrites_only_consumable_logits():
    torch.manual_seed(1)
    weight, target = torch.randn(9, 5), torch.randint(0, 9, (6,))
    leaf = torch.randn(6, 9, requires_grad=True)
    before = leaf.detach().clone()
    smoothed_cross_entropy(leaf, target, 0.1).backward()
    assert torch.equal(leaf.detach(), before)  # a caller's logits are left as they were
    plain = torch.randn(6, 5, requires_grad=True) @ weight.t()
    assert not consumable(plain) and not consumable(leaf)
    hidden = torch.randn(6, 5, requires_grad=True)
    logits = project(hidden, weight, ReusableBuffer())
    assert consumable(logits)
    expected = torch.autograd.grad(F.cross_entropy(logits, target, label_smoothing=0.1, reduction="sum"), logits,
                                   retain_graph=True)[0]
    smoothed_cross_entropy(logits, target, 0.1).backward()
    assert torch.allclose(logits.detach(), expected, atol=1e-6)  # the gradient, written over the logits


def test_projection_keeps_leading_dimensions_and_copies_start_empty():
    weight, buffer = torch.randn(11, 4), ReusableBuffer()
    hidden = torch.randn(2, 3, 4)
    assert torch.allclose(project(hidden, weight, buffer), hidden @ weight.t(), atol=1e-6)
    assert buffer.flat is not None and copy.deepcopy(buffer).flat is None


def test_decoders_train_with_logits_in_their_buffer():
    """Both decoder families: a step's logits sit in the decoder's buffer (so the next step reuses
    that memory) and the parameter gradients equal those of the plain product."""
    from test_search import source, tiny_model

    src, mask = source(0)
    tgt = torch.randint(4, 9, (src.size(0), 5))
    for decoder in ("transformer", "rnn_luong"):
        model = tiny_model(0, decoder=decoder).train()
        grads, addresses = [], []
        for plain in (False, True, False):
            if plain:  # the product without the buffer, as before seqattn.logits
                dec = model.decoder
                dec.output = lambda h: h @ (dec.embed_tokens.weight if dec.proj is None else dec.proj.weight).t()
            logits = model(src, mask, tgt[:, :-1], tgt[:, 1:] > 0)  # (N,V)
            assert consumable(logits) != plain
            if not plain:
                addresses.append(logits.data_ptr())
                assert addresses[-1] == model.decoder.logits_buffer.flat.data_ptr()
            model.zero_grad()
            smoothed_cross_entropy(logits, tgt[:, 1:].reshape(-1), 0.1).backward()
            grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
            if plain:
                del model.decoder.output
        for ours, ref in zip(grads[0], grads[1]):
            assert torch.allclose(ours, ref, atol=1e-6)
        assert all(torch.equal(a, b) for a, b in zip(grads[0], grads[2])) and addresses[0] == addresses[1]
