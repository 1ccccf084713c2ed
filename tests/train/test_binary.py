import numpy as np
import pytest
import torch

from train.binary import approx_sign, binarize_activation, binarize_weight, sign_pm1, ste_sign, weight_scale

VALUES = torch.tensor([-2.0, -1.0, -0.75, -0.25, -0.0, 0.0, 0.25, 0.75, 1.0, 2.0])


class TestValues:
    def test_sign_zero_is_plus_one(self):
        out = sign_pm1(VALUES)
        assert out.tolist() == [-1, -1, -1, -1, 1, 1, 1, 1, 1, 1]
        assert torch.sign(torch.tensor(0.0)).item() == 0  # the trap sign_pm1 avoids

    @pytest.mark.parametrize("fn", [approx_sign, ste_sign])
    def test_forward_is_sign_pm1(self, fn):
        assert torch.equal(fn(VALUES), sign_pm1(VALUES))

    def test_weight_alpha_per_output_channel(self):
        w = torch.tensor([[[[1.0, -3.0]]], [[[0.5, 0.0]]]])  # (2, 1, 1, 2)
        alpha = weight_scale(w).reshape(-1)
        assert torch.allclose(alpha, torch.tensor([2.0, 0.25]))
        out = binarize_weight(w)
        expected = torch.tensor([[[[2.0, -2.0]]], [[[0.25, 0.25]]]])  # 0 -> +alpha
        assert torch.equal(out, expected)

    def test_unknown_grad_rejected(self):
        with pytest.raises(ValueError, match="approx"):
            binarize_activation(VALUES, "bogus")


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


class TestGradients:
    def test_approx_sign_piecewise_polynomial(self):
        @np.vectorize
        def ref(x):
            if -1 <= x < 0:
                return 2 + 2 * x
            if 0 <= x < 1:
                return 2 - 2 * x
            return 0.0

        g = _grad(approx_sign, VALUES)
        assert np.allclose(g.numpy(), ref(VALUES.numpy()))
        assert g[VALUES.tolist().index(0.0)] == 2.0  # peak at 0

    def test_ste_sign_clipped(self):
        g = _grad(ste_sign, VALUES)
        assert g.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]

    def test_weight_straight_through_clamp(self):
        w = torch.tensor([[-1.5, -0.5, 0.0, 0.5, 1.5]])
        g = _grad(binarize_weight, w)
        assert g.tolist() == [[0, 1, 1, 1, 0]]

    def test_random_against_reference(self):
        torch.manual_seed(0)
        x = torch.randn(1000) * 1.5
        g = _grad(approx_sign, x)
        assert torch.allclose(g, torch.clamp(2 - 2 * x.abs(), min=0))
