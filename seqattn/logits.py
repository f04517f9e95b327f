"""The output projection of a decoder, into memory reused from one training step to the next.

On the CPU, a tensor over 32 MB is paid in page faults every time it is made (see
:mod:`seqattn.buffer`). The logits are a training step's largest tensors, and their gradient
another as large: 1,536 tokens x 8,000 types in fp32 is 49 MB, 4,096 tokens (the Multi30k
recipe's batches) 131 MB. On this project's 2-core AMD EPYC, allocating and filling 49 MB took
17.3 ms, filling it again 1.4 ms; the 1,536 x 512 x 8,000 projection ran at 141 GFLOP/s into fresh
memory, 173 into reused memory (185 for a 2,048-cube probe).

:func:`project` writes the logits into a :class:`~seqattn.buffer.ReusableBuffer` kept by the
decoder, reused once nothing else holds it, and :func:`seqattn.loss.smoothed_cross_entropy` writes
their gradient over them (:func:`consumable`); the fused cross-entropies of Megatron-LM and Liger
also reuse the logits' memory. Training steps of translation_speed.py's small model (d_model 256,
3+3 layers, vocabulary 8,000, fp32, A/B against the plain product in one process, HF alongside):
1.059x as fast at 64 x 24 token batches (522 against 553 ms), 1.056x at 128 x 32 (1,374 against
1,450 ms); minor page faults per step fell from 24-29 thousand to 0-11 thousand at 1,536 tokens,
from 64-76 thousand to 0-22 thousand at 4,096 (HF's steps: 73-85 and 196-225 thousand). The base
model (d_model 512, 6+6), whose steps are 5x longer for the same logits, showed no difference
(0.993x, within the spread).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqattn.buffer import ReusableBuffer
from seqattn.linear import eager_cpu_fp32


class _Projection(torch.autograd.Function):
    """hidden (N,D) @ weight(V,D).T -> (N,V) into ``buffer``'s memory."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, buffer: ReusableBuffer) -> Tensor:
        out = buffer.take((hidden.size(0), weight.size(0)), hidden)
        torch.mm(hidden, weight.t(), out=out)
        ctx.save_for_backward(hidden, weight)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        hidden, weight = ctx.saved_tensors
        d_hidden = grad @ weight if ctx.needs_input_grad[0] else None  # (N,V) @ (V,D) -> (N,D)
        d_weight = grad.t() @ hidden if ctx.needs_input_grad[1] else None  # (V,N) @ (N,D) -> (V,D)
        return d_hidden, d_weight, None


def project(hidden: Tensor, weight: Tensor, buffer: ReusableBuffer) -> Tensor:
    """Logits ``hidden (...,D) @ weight(V,D).T -> (...,V)``, into ``buffer`` on the CPU in fp32
    (elsewhere, under autocast or ``torch.compile``: a plain product)."""
    if not eager_cpu_fp32(hidden, weight):
        return hidden @ weight.t()  # (...,D) @ (D,V) -> (...,V)
    if hidden.dim() == 2:  # no view on top, so that the loss sees the logits as consumable
        return _Projection.apply(hidden, weight, buffer)
    rows = hidden.reshape(-1, hidden.size(-1))  # (...,D) -> (M,D)
    return _Projection.apply(rows, weight, buffer).view(*hidden.shape[:-1], weight.size(0))  # (M,V) -> (...,V)


def consumable(logits: Tensor) -> bool:
    """Whether ``logits`` come straight from :func:`project`'s buffer in a graph being recorded,
    so that a loss may overwrite them with their gradient in its backward. Their memory then
    belongs to the step: nothing should read the logits after the loss's backward."""
    return isinstance(logits.grad_fn, _Projection._backward_cls)
