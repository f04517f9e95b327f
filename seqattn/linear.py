"""A Linear layer whose weight is stored (in, out), so every product is ``x @ W`` with ``W`` contiguous.

``nn.Linear`` stores (out, in) and computes ``x @ W.T``. For the few-row products of incremental
decoding, MKL's kernel for a contiguous (in, out) right operand is much faster on this project's
2-core CPU: (32 x 512) @ (512 x 2048) took 287 us against 499 us, (32 x 2048) @ (2048 x 512)
305 us against 405 us. Training is unaffected: forward plus backward of a 1,536-row batch took the
same time in both layouts (within 2%, all Transformer base and small shapes). Storing the layout
we multiply by avoids keeping a transposed copy, which would have to be invalidated on every
optimizer step (fused optimizers update parameters in place without bumping their version).
Initialisation matches ``nn.Linear``'s distribution.

Decoding multiplies the same weights by a few rows at every step, and MKL re-packs the weight
inside every such GEMM. :func:`packed_for_rows` (search uses it) multiplies through MKL's
packed-GEMM API instead (what TorchInductor's CPU "freezing" uses): each weight is packed for the
search's row count, from a contiguous copy kept while the weight is unchanged (see
:class:`WeightPack`). The 37 products of a Transformer base decoder step (103 MB of fp32
weights, 2 cores) took 3.8 ms instead of 5.8 ms at 4 rows, 8.9 instead of 10.3 at 32, 22.1
instead of 24.6 at 128. Whole searches (base, 25 steps, A/B in one process, packs built in warm-up):
greedy at batch 32 525 ms against 584, beam 4 at batch 32 1,103 against 1,211, at batch 1 242
against 294; twelve batches of 8-48 sentences, a fresh pack each: beam 4 13.6 s against 14.3,
greedy 6.6 against 7.1. One row gains nothing (GEMV does not pack) and is left alone. Products
equal ``addmm``'s up to rounding order.

That was an Intel Xeon. On an AMD EPYC (Zen 3) 2-core machine MKL's few-row kernels are slow
and oneDNN's packed inner-product (``torch.ops.mkldnn``, also from Intel, JIT-compiled for the
CPU it runs on) is much faster: the same 37 products took 7.9 ms instead of 16.2 (MKL packed) at
4 rows, 17.0 instead of 24.9 at 32, 53 instead of 71 at 128, and 7.1 instead of 8.3 (plain) at
one row. So the pack's backend follows the CPU vendor, each the faster where measured (see
:data:`BACKEND`). A oneDNN pack serves any row count; an MKL pack only its own.

One row (greedy search of one sentence) is a matrix-vector product, bound by memory bandwidth,
and both oneDNN and MKL stream the weight from one core (12.6-24 GB/s for the 1-16 MB weights of
a base model, against 24-30 GB/s for a two-core ``sum`` over them). On the oneDNN (AMD) path,
products of up to :data:`HALVES_ROWS` rows multiply the weight's two row halves (2,out/2,in) by
the rows' transpose in one batched product, ``W_half @ x.T``: each core streams one half as
contiguous dot products. The 37 products of a base decoder step, with distinct weights streamed
from memory as in a search (median of 41 alternations, four runs): one row 5.6-6.2 ms, against
6.1-7.0 with the column halves used before (2,in,out/2, as ``x @ W_half``, weights with more
outputs than inputs only) and 6.5-7.5 with oneDNN's pack; four rows 6.9-9.0 ms against oneDNN's
7.8-9.4 (three runs faster by 7-10%, one 2% slower). Two rows ran even, eight and sixteen 15-26%
slower than oneDNN: hence four. Whole searches (base, 25 steps, batch 1, A/B in one process,
15-21 alternations, six runs) against the column halves and oneDNN's pack: greedy x1.04-1.14 and
beam 4 (four rows) x1.03-1.16 faster (paired medians), the same hypotheses; HF's searches timed in
the same rotation read x0.96-1.04 between the two arms. Intel was not measured.

Outside packed decoding (training, encoders), the oneDNN path also runs the forward product and
the input's gradient through oneDNN's inner product, on the plain weight (:class:`_OneDNNLinear`;
packing first would cost a weight-sized reorder per optimizer step). On the AMD EPYC, 1,536-row
products of the Transformer base and small shapes ran at 203-222 GFLOP/s forward against 185-201
with ``addmm``, 203-219 for the input's gradient against 184-202 with ``grad @ W.T``; for the
weight's gradient oneDNN was mixed (113-213 against 162-193), so ``x.T @ grad`` stays with MKL.
Results equal ``addmm``'s up to rounding order (fp32 throughout). Whole training steps of
translation_speed.py (64 x 24 tokens, A/B in one process with HF's step in the rotation): base
x1.034-1.069 (paired), small x1.021-1.023; with HF in the rotation the base ratio read x1.152
against x1.128. Searches, whose encoders gain: batch-32 greedy x1.036-1.04, beam 4 x0.997-1.02,
batch-1 greedy x1.047. Intel keeps ``addmm`` (not measured there).
"""

from __future__ import annotations

import math
import platform
import re
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn


class Linear(nn.Module):
    """``y = x @ weight + bias``; ``weight`` (in, out)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)
        self.pack = WeightPack()

    def set_packing(self, rows: int | None) -> None:
        """See :func:`packed_for_rows`."""
        self.pack.activate(self.weight.t(), rows)  # (in,out) -> (out,in), MKL's layout

    def train(self, mode: bool = True) -> "Linear":
        if mode:
            self.pack.clear()  # training changes the weight: free the packs' memory now
        return super().train(mode)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.dim() == 2  # decoding steps: no reshapes, each costs a few microseconds there
        rows = x if flat else x.reshape(-1, self.in_features)  # (...,in) -> (M,in)
        if self.pack.active:
            out = self.pack.matmul(rows, self.bias)
        elif _onednn_dense(rows, self.weight):
            out = _OneDNNLinear.apply(rows, self.weight, self.bias)  # (M,out)
        else:
            out = rows @ self.weight if self.bias is None else torch.addmm(self.bias, rows, self.weight)  # (M,out)
        return out if flat else out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def eager_cpu_fp32(*tensors: Tensor) -> bool:
    """All ``tensors`` on the CPU in fp32, outside CPU autocast (which would run the products in
    bf16) and ``torch.compile`` (which traces neither a oneDNN op nor an ``out=`` buffer): where
    the CPU-specific products of this module and :mod:`seqattn.logits` apply."""
    return (all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling())


def _onednn_dense(x: Tensor, weight: Tensor) -> bool:
    """Whether a product outside packed decoding goes through :class:`_OneDNNLinear`: where oneDNN
    is the backend (see :data:`BACKEND`) and :func:`eager_cpu_fp32` holds."""
    return BACKEND == "onednn" and eager_cpu_fp32(x, weight)


class _OneDNNLinear(torch.autograd.Function):
    """``x (M,in) @ weight (in,out) + bias`` and the input's gradient through oneDNN's inner
    product, which reads the plain weight in either orientation; the weight's gradient through
    ``x.T @ grad`` (MKL), which was as fast or faster there (see the module's docstring)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.ops.mkldnn._linear_pointwise(x, weight.t(), bias, "none", [], "")  # (M,out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        d_x = None
        if ctx.needs_input_grad[0]:  # grad (M,out) @ weight(in,out).T -> (M,in): weight read as (out=in, in=out)
            d_x = torch.ops.mkldnn._linear_pointwise(grad, weight, None, "none", [], "")
        d_w = x.t() @ grad if ctx.needs_input_grad[1] else None  # (in,M) @ (M,out) -> (in,out)
        d_b = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return d_x, d_w, d_b


class WeightPack:
    """Packed copies (MKL or oneDNN, see :data:`BACKEND`) of one weight (out,in), each made for
    products with ``rows`` rows (for up to :data:`HALVES_ROWS` rows on the oneDNN path: the
    weight's row halves, see the module's docstring).

    MKL packs are made from a contiguous (out,in) copy of the weight, kept while the weight is
    unchanged: packing a base decoder from it takes 22-46 ms, against 80-200 ms from the transposed
    view of a :class:`Linear` weight (which would have to be copied every time). oneDNN packs read
    the view directly and keep no copy. The ``KEEP`` most recently used packs are kept. A pack and
    the copy are rebuilt when the weight may have changed: a different version counter (in-place
    autograd ops, ``load_state_dict``), storage, or sum of a strided sample of its elements (fused
    optimizers update in place without bumping the version, but move every element). Memory: the
    MKL copy (none for a contiguous weight) and each pack are as large as the weight; all are
    dropped when the module returns to training mode. Held as a plain attribute, so
    ``state_dict`` and ``.to()`` never see it."""

    SAMPLE = 1021  # the probe reads one element in SAMPLE: ~0.1% of the weight's cache lines
    KEEP = 2  # packs kept: a search alternating greedy and beam keeps both

    def __init__(self) -> None:
        self.source: tuple[tuple, Tensor | None] | None = None  # (weight key, contiguous (out,in) copy for MKL)
        self.packs: OrderedDict[int, Tensor] = OrderedDict()  # rows -> pack, least recently used first
        self.packed: Tensor | None = None
        self.active = 0  # rows of the products to pack, 0 outside packed_for_rows

    def clear(self) -> None:
        self.source, self.packed, self.active = None, None, 0
        self.packs.clear()

    def activate(self, weight: Tensor, rows: int | None) -> None:
        """Use the pack for ``rows`` (made if needed); None: stop."""
        self.active, self.packed = 0, None
        if rows is None or not _can_pack(weight, rows):
            return
        stored = weight.t() if weight.t().is_contiguous() else weight  # a Linear's (in,out) storage, or (out,in)
        probe = float(stored.reshape(-1)[:: self.SAMPLE].sum())  # a view: reads only the sampled elements
        key = (weight._version, weight.data_ptr(), tuple(weight.shape), probe)
        if self.source is None or self.source[0] != key:
            self.clear()
            self.source = (key, weight.detach().contiguous() if BACKEND == "mkl" else None)  # oneDNN needs no copy
        made_for = _pack_rows(rows, weight)
        if made_for not in self.packs:
            self.packs[made_for] = _make_pack(weight.detach() if self.source[1] is None else self.source[1], made_for)
            while len(self.packs) > self.KEEP:
                self.packs.popitem(last=False)
        self.packs.move_to_end(made_for)
        self.packed, self.active = self.packs[made_for], rows

    def matmul(self, x: Tensor, bias: Tensor | None) -> Tensor:
        """x (M,in) @ weight(out,in).T + bias -> (M,out); an MKL pack serves only M == its row
        count (MKL multiplies by the contiguous copy otherwise), a oneDNN pack or the halves any M."""
        if self.packed.dim() == 3:
            return _halves_product(x, self.packed, bias)
        if BACKEND == "onednn":
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, "none", [], "")
        return torch.ops.mkl._mkl_linear(x, self.packed, self.source[1], bias, self.active)


def _cpu_vendor() -> str:
    """``vendor_id`` from /proc/cpuinfo ("GenuineIntel", "AuthenticAMD"), "" where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            found = re.search(r"^vendor_id\s*:\s*(\S+)", f.read(65536), re.MULTILINE)
    except OSError:
        return ""
    return found.group(1) if found else ""


def usable_backends() -> list[str]:
    """The packed-GEMM backends this torch build offers here: "mkl", "onednn" (x86-64 only: ARM
    builds were never measured)."""
    mkl = torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, "_mkl_linear")
    onednn = (platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkldnn.is_available()
              and hasattr(torch.ops.mkldnn, "_linear_pointwise"))
    return [name for name, ok in (("mkl", mkl), ("onednn", onednn)) if ok]


def _backend() -> str:
    """MKL's packed GEMM on Intel CPUs (measured fastest there), oneDNN's on other x86-64 CPUs
    (measured on AMD); "" if neither is usable."""
    usable = usable_backends()
    mkl, onednn = "mkl" in usable, "onednn" in usable
    if mkl and (_cpu_vendor() == "GenuineIntel" or not onednn):
        return "mkl"
    return "onednn" if onednn else ""


BACKEND = _backend()  # "mkl", "onednn" or "" (no packing)


# oneDNN packs are made for this many rows and serve every row count (AMD EPYC, base decoder step:
# packs made for 32 or 128 rows ran 1-, 4-, 32- and 128-row products within noise of each other and of
# packs made for the exact count; a pack made for 1 row ran 4-row products at half speed)
ONEDNN_PACK_ROWS = 64
HALVES_ROWS = 4  # on the oneDNN path, products of at most this many rows use the weight's row halves
HALVES = 0  # the key of the halves among a WeightPack's packs


def _pack_rows(rows: int, weight: Tensor) -> int:
    """The row count a pack for ``rows``-row products is made for: its own for MKL, whose packs
    serve no other; with oneDNN, one for all, so varying batch sizes pack each weight once, except
    for few rows, where the weight's halves are faster (:data:`HALVES`, see the module's docstring)."""
    if BACKEND != "onednn":
        return rows
    return HALVES if rows <= HALVES_ROWS and weight.size(0) % 2 == 0 else ONEDNN_PACK_ROWS


def _make_pack(weight: Tensor, rows: int) -> Tensor:
    """A pack of ``weight`` (out,in) made for ``rows``-row products (see :func:`_pack_rows`)."""
    if rows == HALVES:
        return weight.unflatten(0, (2, -1)).contiguous()  # (out,in) -> (2,out/2,in)
    if BACKEND == "onednn":
        return torch.ops.mkldnn._reorder_linear_weight(weight, rows)
    return torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)


def _halves_product(x: Tensor, halves: Tensor, bias: Tensor | None) -> Tensor:
    """x (M,in) @ the weight's row halves (2,out/2,in) + bias -> (M,out), as halves @ x.T in one
    batched product, a half per core."""
    m = x.size(0)
    both = x.t().expand(2, -1, -1)  # (M,in) -> (in,M) -> (2,in,M), no copy
    if bias is None:
        out = torch.bmm(halves, both)  # (2,out/2,M)
    else:
        out = torch.baddbmm(bias.view(2, -1, 1), halves, both)  # (out,) -> (2,out/2,1) broadcast over M
    return out.view(-1, m).t().contiguous()  # (2,out/2,M) -> (out,M) -> (M,out); no copy for M = 1


def _can_pack(weight: Tensor, rows: int) -> bool:
    return (BACKEND != "" and (rows > 1 or BACKEND == "onednn")  # MKL: one row is a GEMV, nothing to pack
            and weight.device.type == "cpu" and weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")  # autocast runs the products in bf16, not from fp32 packs
            and not torch.is_grad_enabled() and not weight.is_inference())  # no version counter to watch


@contextmanager
def packed_for_rows(module: nn.Module, rows: int) -> Iterator[None]:
    """Inference: within the block, products of ``rows`` rows (with MKL: exactly; with oneDNN:
    any) with the weights of every submodule that has ``set_packing`` (:class:`Linear`, a tied
    output projection) run as packed GEMMs (see :data:`BACKEND`). A no-op where packing does not
    apply (GPU, non-fp32, autocast, gradients on, one row with MKL)."""
    targets = [m for m in module.modules() if hasattr(m, "set_packing") and not m.training]
    for m in targets:
        m.set_packing(rows)
    try:
        yield
    finally:
        for m in targets:
            m.set_packing(None)
