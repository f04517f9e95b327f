"""A Linear layer that multiplies by a cached (in, out) copy of its weight when no gradient is needed.

``nn.Linear`` computes ``x @ W.T`` with ``W`` stored (out, in). For the few-row products of
incremental decoding, MKL's kernel for a contiguous (in, out) right operand is much faster on this
project's 2-core CPU: (32 x 512) @ (512 x 2048) took 287 us against 499 us, the (4 x 512) tied
output projection onto 8,000 tokens 361 us against 636 us. Training keeps ``nn.Linear``'s path.
The copy is made on first use and remade whenever the weight changes (its version counter, storage
or device), so it never goes stale; it costs one extra copy of the weights while decoding and is
not part of the state_dict.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TransposedWeight:
    """Cache of ``weight.t().contiguous()``, rebuilt when ``weight`` changes."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: Tensor | None = None

    def get(self, weight: Tensor) -> Tensor:
        key = (weight._version, weight.data_ptr(), weight.device, weight.dtype, weight.shape)
        if key != self._key:
            self._value = weight.detach().t().contiguous()  # (out,in) -> (in,out)
            self._key = key
        return self._value


def fast_path(x: Tensor, weight: Tensor) -> bool:
    """True when no gradient is recorded, no autocast is active and the dtypes agree."""
    if torch.is_autocast_enabled(x.device.type) or x.dtype != weight.dtype:
        return False
    return not torch.is_grad_enabled() or not (x.requires_grad or weight.requires_grad)


class Linear(nn.Linear):
    """Drop-in ``nn.Linear`` (same parameters, same state_dict) with the cached fast path."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self._wt = TransposedWeight()

    def forward(self, x: Tensor) -> Tensor:
        if not fast_path(x, self.weight):
            return nn.functional.linear(x, self.weight, self.bias)
        rows = x.reshape(-1, self.in_features)  # (...,in) -> (M,in)
        wt = self._wt.get(self.weight)
        out = rows @ wt if self.bias is None else torch.addmm(self.bias, rows, wt)  # (M,out)
        return out.view(*x.shape[:-1], self.out_features)
