import pytest
import torch
from torch import Tensor

from seqattn import linear
from seqattn.linear import Linear, packed_for_rows


BACKENDS = linear.usable_backends()


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Each packed-GEMM backend this torch build has, whichever this CPU would pick."""
    monkeypatch.setattr(linear, "BACKEND", request.param)
    return request.param


def test_linear_stores_in_out_and_matches_nn_linear_with_gradients(backend):
    """Training products: oneDNN's inner product where it is the backend, addmm elsewhere."""
    torch.manual_seed(0)
    layer = Linear(8, 5)
    assert layer.weight.shape == (8, 5) and layer.bias.shape == (5,)
    assert layer.weight.abs().max() <= 8**-0.5  # nn.Linear's U(-1/sqrt(in), 1/sqrt(in))
    x = torch.randn(3, 4, 8, requires_grad=True)
    assert linear._onednn_dense(x.reshape(-1, 8), layer.weight) == (backend == "onednn")
    y = layer(x)
    ref = torch.nn.functional.linear(x, layer.weight.t(), layer.bias)
    assert y.shape == (3, 4, 5) and torch.allclose(y, ref, atol=1e-6)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, layer.weight, layer.bias), g)
    want = torch.autograd.grad(ref, (x, layer.weight, layer.bias), g)
    for a, b in zip(grads, want):
        assert torch.allclose(a, b, atol=1e-5)
    no_bias = Linear(8, 5, bias=False)
    assert no_bias.bias is None and set(no_bias.state_dict()) == {"weight"}
    rows = torch.randn(8, 6, requires_grad=True).t()  # (6,8), not contiguous
    out = no_bias(rows)
    assert torch.allclose(out, rows @ no_bias.weight, atol=1e-6)
    no_bias.weight.requires_grad_(False)  # a frozen weight: only the input's gradient
    (d_rows,) = torch.autograd.grad(no_bias(rows).square().sum(), rows)
    assert torch.allclose(d_rows, 2 * (rows @ no_bias.weight) @ no_bias.weight.t(), atol=1e-5)
    assert Linear(3, 0)(torch.randn(2, 3)).shape == (2, 0)


def use_packed(layer: Linear, rows: int, x: Tensor) -> Tensor:
    """``layer(x)`` inside ``packed_for_rows``; returns the output, checking the pack was used."""
    with torch.no_grad(), packed_for_rows(layer, rows):
        assert layer.pack.active == rows
        return layer(x)


def test_packed_products_equal_addmm_and_packs_are_kept_per_row_count(backend):
    torch.manual_seed(0)
    layer = Linear(16, 24).eval()
    x4, x3 = torch.randn(2, 2, 16), torch.randn(3, 16)
    torch.testing.assert_close(use_packed(layer, 4, x4), x4 @ layer.weight + layer.bias)
    with torch.no_grad(), packed_for_rows(layer, 4):
        torch.testing.assert_close(layer(x3), x3 @ layer.weight + layer.bias)  # another row count works too
    assert layer.pack.active == 0
    use_packed(layer, 8, torch.randn(8, 16))
    use_packed(layer, 4, x4)
    use_packed(layer, 12, torch.randn(12, 16))
    if backend == "mkl":  # a pack per row count, the two most recently used kept
        assert list(layer.pack.packs) == [4, 12]
    else:  # one pack serves every row count over HALVES_ROWS (8, 12), the weight's halves the few-row ones (4)
        assert list(layer.pack.packs) == [linear.HALVES, linear.ONEDNN_PACK_ROWS]
    with torch.no_grad(), packed_for_rows(layer, 1):  # one row: a GEMV for MKL, nothing to pack; halves for oneDNN
        assert layer.pack.active == (1 if backend == "onednn" else 0)
        x1 = torch.randn(1, 16)
        torch.testing.assert_close(layer(x1), x1 @ layer.weight + layer.bias)
    with packed_for_rows(layer, 4):  # gradients on: never packed
        assert layer.pack.active == 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), packed_for_rows(layer, 4):
        assert layer.pack.active == 0  # autocast: bf16 products, as without packing
        assert layer(layer(torch.randn(4, 16))[:, :16]).dtype == torch.bfloat16  # a bf16 input works too
    layer.train()
    assert not layer.pack.packs and layer.pack.source is None  # memory freed for training
    with torch.no_grad(), packed_for_rows(layer, 4):
        assert layer.pack.active == 0


def test_the_backend_follows_the_cpu_vendor(monkeypatch):
    """MKL's packed GEMM where it was measured fastest (Intel), oneDNN's elsewhere (AMD)."""
    if len(BACKENDS) < 2:
        pytest.skip("this torch build lacks MKL or oneDNN")
    monkeypatch.setattr(linear, "_cpu_vendor", lambda: "GenuineIntel")
    assert linear._backend() == "mkl"
    for vendor in ("AuthenticAMD", ""):
        monkeypatch.setattr(linear, "_cpu_vendor", lambda v=vendor: v)
        assert linear._backend() == "onednn"
    assert linear.BACKEND in BACKENDS  # this machine's own choice is one this build has


@pytest.mark.parametrize("change", ["fused_adamw", "load_state_dict"])
def test_a_pack_is_rebuilt_after_the_weights_change(change, backend):
    """Fused optimizers update in place without bumping the version counter: the probe sees it."""
    torch.manual_seed(0)
    layer = Linear(16, 24).eval()
    x = torch.randn(4, 16)
    before = use_packed(layer, 4, x)
    if change == "fused_adamw":
        opt = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True)
        layer(x).sum().backward()
        opt.step()
    else:
        layer.load_state_dict({"weight": torch.randn(16, 24), "bias": torch.zeros(24)})
    after = use_packed(layer, 4, x)
    torch.testing.assert_close(after, x @ layer.weight.detach() + layer.bias.detach())
    assert not torch.allclose(before, after)


@pytest.mark.skipif("onednn" not in BACKENDS, reason="this torch build lacks oneDNN")
@pytest.mark.parametrize("bias", [True, False])
def test_few_row_products_use_the_weights_row_halves(bias, monkeypatch):
    monkeypatch.setattr(linear, "BACKEND", "onednn")
    torch.manual_seed(0)
    wide, narrow, odd = (Linear(i, o, bias=bias).eval() for i, o in ((16, 24), (24, 16), (16, 7)))
    for layer in (wide, narrow):
        for rows in range(1, linear.HALVES_ROWS + 1):
            with torch.no_grad(), packed_for_rows(layer, rows):
                assert layer.pack.packed.shape == (2, layer.out_features // 2, layer.in_features)
                for m in {1, rows, 7}:  # the pack serves any row count
                    x = torch.randn(m, layer.in_features)
                    want = x @ layer.weight + (layer.bias if bias else 0)
                    got = layer(x)
                    assert got.is_contiguous()
                    torch.testing.assert_close(got, want)
        assert list(layer.pack.packs) == [linear.HALVES]  # one pack for every few-row count
    with torch.no_grad(), packed_for_rows(odd, 1):  # an odd number of outputs has no halves: the oneDNN pack
        assert odd.pack.packed.dim() == 2
        x = torch.randn(1, 16)
        torch.testing.assert_close(odd(x), x @ odd.weight + (odd.bias if bias else 0))
    with torch.no_grad(), packed_for_rows(wide, linear.HALVES_ROWS + 1):  # more rows: the oneDNN pack, the halves kept
        assert wide.pack.packed.dim() == 2 and list(wide.pack.packs) == [linear.HALVES, linear.ONEDNN_PACK_ROWS]
