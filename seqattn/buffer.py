"""Memory reused from one use to the next: the logits of a training step, the keys and values
cached by a search.

On the CPU, PyTorch takes tensor memory from glibc's ``malloc``, which serves a block over its
largest mmap threshold (32 MB) with a fresh ``mmap`` and unmaps it on free, so a tensor that large
is paid in page faults every time it is made. Two of this project's tensors are that large, and are
made again and again: a training step's logits (:mod:`seqattn.logits`), and a beam search's cache of
self-attention keys and values (Transformer base, 32 sentences x 4 beams: 104 MB, of which a
25-step search writes 79 MB). On this project's 2-core AMD EPYC, writing 79 MB into fresh memory
took 30.8 ms, into memory written before 3.9 ms; a base beam-4 search of 32 sentences paid 19
thousand page faults and 30-62 ms for its cache writes (of 1.35-1.56 s) in fresh memory. With
the cache in reused memory its page faults per search fell from 30 to 11 thousand (the rest are
other tensors'), and it ran 1.02x as fast (paired A/B in one process: 1,494 against 1,515 ms).

A :class:`ReusableBuffer` hands out one flat buffer's memory again once nothing holds what it
handed out last.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# the number of references to a tensor's storage (private; without it no buffer is ever reused)
_use_count = getattr(torch._C, "_storage_Use_Count", None)


class ReusableBuffer:
    """One flat buffer, handed out as the memory of each request once nothing holds its last
    result (neither autograd nor a caller), and grown when a request is larger. Held as a plain
    attribute of a module, so ``state_dict`` and ``.to()`` never see it; copies of the module
    start without one."""

    def __init__(self) -> None:
        self.flat: Tensor | None = None
        self.refs = 0  # the storage's reference count while only this buffer holds it

    def _count(self) -> int:
        return _use_count(self.flat.untyped_storage()._cdata)

    def take(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """Uninitialised memory for a tensor of ``shape`` with ``like``'s dtype and device."""
        n = math.prod(shape)
        if _use_count is None or (self.flat is not None and self._count() > self.refs):
            return like.new_empty(shape)  # still held (e.g. a caller keeps the last logits): fresh memory
        flat = self.flat
        if (flat is None or flat.numel() < n or flat.dtype != like.dtype or flat.device != like.device
                or flat.is_inference() and not torch.is_inference_mode_enabled()):  # made by a search, see search.py
            self.flat = flat = None  # the old buffer goes before the new one is made
            self.flat = like.new_empty(n)
            self.refs = self._count()
        return self.flat[:n].view(shape)

    def clear(self) -> None:
        """Let the memory go (once nothing else holds it)."""
        self.flat, self.refs = None, 0

    def __deepcopy__(self, memo: dict) -> "ReusableBuffer":
        return ReusableBuffer()

    def __copy__(self) -> "ReusableBuffer":
        return ReusableBuffer()
