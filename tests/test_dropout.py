import pytest
import torch

from seqattn.dropout import Dropout, dropout


def test_drop_rate_and_scale_match_the_probability():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.1, True)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.003  # binomial s.d. is 0.0007
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 65536 / (65536 - 6554)))
    assert abs(y.mean().item() - 1.0) < 0.005  # the expectation is kept


def test_odd_sizes_shapes_and_dtypes():
    torch.manual_seed(0)
    for shape in [(1,), (3,), (5, 7), (2, 3, 5)]:
        x = torch.randn(shape)
        y = dropout(x, 0.5, True)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert torch.all((y == 0) | torch.isclose(y, 2 * x))
    assert dropout(torch.randn(4, 4, dtype=torch.bfloat16), 0.3, True).dtype == torch.bfloat16


def test_identity_off_and_zero_at_one():
    torch.manual_seed(0)
    x = torch.randn(10, 10)
    assert dropout(x, 0.3, False) is x
    assert dropout(x, 0.0, True) is x
    assert torch.count_nonzero(dropout(x, 1.0, True)) == 0
    assert torch.count_nonzero(dropout(x, 1.0 - 1e-7, True)) == 0  # rounds to 1: no division by zero


def test_gradient_is_masked_like_the_output():
    torch.manual_seed(1)
    x = torch.randn(64, 33, requires_grad=True)
    y = dropout(x, 0.25, True)
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)
    assert torch.allclose(x.grad[y != 0], torch.tensor(65536 / (65536 - 16384)))


def test_deterministic_under_a_seed_and_module_form():
    layer = Dropout(0.2).train()
    x = torch.randn(8, 16)
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    b = layer(x)
    assert torch.equal(a, b)
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError):
        Dropout(1.5)
