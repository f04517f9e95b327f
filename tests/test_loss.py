import torch
import torch.nn.functional as F

from seqattn.loss import LSE_ROWS, smoothed_cross_entropy


def test_value_and_gradient_equal_torch_cross_entropy():
    torch.manual_seed(0)
    for eps, rows in ((0.0, 37), (0.1, 37), (0.3, 37), (0.1, 2 * LSE_ROWS + 5)):  # the last: three row blocks
        logits = (3 * torch.randn(rows, 11)).requires_grad_()
        target = torch.randint(0, 11, (rows,))
        ours = smoothed_cross_entropy(logits, target, eps)
        (g_ours,) = torch.autograd.grad(2.5 * ours, logits)
        ref = F.cross_entropy(logits, target, label_smoothing=eps, reduction="sum")
        (g_ref,) = torch.autograd.grad(2.5 * ref, logits)
        assert torch.allclose(ours, ref, atol=1e-4)
        assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_gradcheck_in_double_and_bf16_runs_in_fp32():
    torch.manual_seed(1)
    target = torch.randint(0, 5, (4,))
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: smoothed_cross_entropy(z, target, 0.2), (logits,))
    low = logits.detach().bfloat16().requires_grad_()
    loss = smoothed_cross_entropy(low, target, 0.1)
    assert loss.dtype == torch.float32
    loss.backward()
    assert low.grad.dtype == torch.bfloat16
