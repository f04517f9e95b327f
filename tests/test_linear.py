import torch

from seqattn.linear import Linear


def test_linear_stores_in_out_and_matches_nn_linear_with_gradients():
    torch.manual_seed(0)
    layer = Linear(8, 5)
    assert layer.weight.shape == (8, 5) and layer.bias.shape == (5,)
    assert layer.weight.abs().max() <= 8**-0.5  # nn.Linear's U(-1/sqrt(in), 1/sqrt(in))
    x = torch.randn(3, 4, 8, requires_grad=True)
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
    assert torch.allclose(no_bias(x[0]), x[0] @ no_bias.weight)
