"""Binarisers for activations and weights: pure functions plus autograd rules.

Conventions used everywhere in burn-edge (training, ONNX and LCE export):

* ``sign_pm1(x) = +1 if x >= 0 else -1`` -- **sign(0) = +1**, exactly Larq Compute Engine's
  convention (``torch.sign(0)`` and ONNX ``Sign(0)`` are 0 and are never used on a binary path).
* A binary weight tensor ``W`` of shape (C_out, C_in, kH, kW) becomes ``alpha_o * sign_pm1(W)``
  with ``alpha_o = mean |W[o]|`` over (C_in, kH, kW), one scale per output channel. alpha is
  treated as a constant in the backward pass (as in ReActNet).

Gradient choices for the activation binariser (``grad`` argument):

* ``"approx"`` (ReActNet / Bi-Real): d/dx = 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere.
* ``"ste"``: clipped straight-through estimator, d/dx = 1 on |x| <= 1, 0 elsewhere.

Weight binariser gradient (``grad`` argument of :func:`binarize_weight`):

* ``"clipped"`` (ReActNet): straight-through of clamp(W, -1, 1), i.e. 1 where |W| <= 1, else 0.
* ``"identity"`` (official BURN code): plain straight-through, 1 everywhere.

Two implementations of each rule, equal on every finite input (``tests/train/test_fast_step.py``):

* the reference ones (:func:`binarize_activation`, :func:`binarize_weight`): one autograd Function per
  formula, ``torch.where`` for the sign -- what the rules say, written plainly;
* the fast ones used in training (:func:`shift_binarize_activation`, :func:`fast_binarize_weight`): the
  shift ``x + b`` and the sign in one Function, the sign as ``sign(sign(x) + 0.5)`` and the clipped STE
  as one ``hardtanh_backward`` pass. On this project's CPU build ``torch.where`` / ``masked_fill`` on a
  bool mask run ~8x slower than a plain float pass (docs/training.md, "Training speed"); only NaN
  differs (the reference maps NaN to -1, the fast sign keeps NaN).
"""

from __future__ import annotations

import torch

ACTIVATION_GRADS = ("approx", "ste")
WEIGHT_GRADS = ("clipped", "identity")


def sign_pm1(x: torch.Tensor) -> torch.Tensor:
    """Elementwise ``where(x >= 0, 1, -1)``: same shape and dtype as ``x``; sign(0) = +1 (also -0.0)."""
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x >= 0, one, -one)


def weight_scale(w: torch.Tensor) -> torch.Tensor:
    """alpha: mean |W| over every axis but the first. (C_out, ...) -> (C_out, 1, ..., 1)."""
    dims = tuple(range(1, w.dim()))
    return w.abs().mean(dim=dims, keepdim=True)


def binarize_weight_values(w: torch.Tensor) -> torch.Tensor:
    """The forward value of the weight binariser, ``alpha_o * sign_pm1(W)``, with no autograd rule.

    Every entry is +-alpha_o; an entry of exactly 0 in W maps to +alpha_o. An all-zero output channel
    has alpha_o = 0 and so stays all-zero (export rejects such a channel: LCE needs alpha_o != 0).
    """
    return weight_scale(w) * sign_pm1(w)


def _surrogate(name: str, value, grad_factor) -> type[torch.autograd.Function]:
    """An autograd Function: forward ``value(x)``, backward ``grad * grad_factor(x)`` (x: the saved input)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return value(x)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * grad_factor(x).to(grad.dtype)

    methods = {"forward": staticmethod(forward), "backward": staticmethod(backward)}
    return type(name, (torch.autograd.Function,), methods)


def _clipped_identity_grad(x: torch.Tensor) -> torch.Tensor:
    return x.abs() <= 1  # d clamp(x, -1, 1) / dx


_ApproxSign = _surrogate("_ApproxSign", sign_pm1, lambda x: torch.clamp(2.0 - 2.0 * x.abs(), min=0.0))
_SteSign = _surrogate("_SteSign", sign_pm1, _clipped_identity_grad)
_BinaryWeight = _surrogate("_BinaryWeight", binarize_weight_values, _clipped_identity_grad)
_BinaryWeightIdentity = _surrogate("_BinaryWeightIdentity", binarize_weight_values, torch.ones_like)


# float32 neighbours of -1 and +1: hardtanh_backward(g, x, lo, hi) zeroes g where x <= lo or x >= hi, so
# with these bounds it keeps g exactly where -1 <= x <= 1 (the inclusive clip of the rules above).
_BELOW_MINUS_ONE = -1.0000001192092896  # nextafter(-1, -inf) in float32
_ABOVE_ONE = 1.0000001192092896  # nextafter(1, +inf) in float32


def fast_sign_pm1(x: torch.Tensor) -> torch.Tensor:
    """:func:`sign_pm1` as three vectorised float passes: sign(sign(x) + 0.5). Equal for every non-NaN
    x (sign(+-0) + 0.5 = 0.5 -> +1); NaN stays NaN. Same shape and dtype as ``x``."""
    return torch.sign(x).add_(0.5).sign_()


def _clipped_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad where |x| <= 1, else 0 (one pass)."""
    return torch.ops.aten.hardtanh_backward(grad, x, _BELOW_MINUS_ONE, _ABOVE_ONE)


class _ShiftSign(torch.autograd.Function):
    """sign_pm1(x + b) with the chosen surrogate gradient; saves only t = x + b."""

    @staticmethod
    def forward(ctx, x, bias, grad_kind):
        t = x + bias
        ctx.save_for_backward(t)
        ctx.grad_kind, ctx.x_dtype, ctx.bias_shape, ctx.bias_dtype = grad_kind, x.dtype, bias.shape, bias.dtype
        return fast_sign_pm1(t)

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved_tensors
        grad = grad.to(t.dtype)
        if ctx.grad_kind == "ste":
            gt = _clipped_grad(grad, t)
        else:  # approx: grad * max(0, 2 - 2|t|)
            gt = grad * t.abs().mul_(-2.0).add_(2.0).clamp_(min=0.0)
        gx = gt.to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        gb = gt.sum_to_size(ctx.bias_shape).to(ctx.bias_dtype) if ctx.needs_input_grad[1] else None
        return gx, gb, None


class _FastBinaryWeight(torch.autograd.Function):
    """alpha_o * sign_pm1(W) forward; straight-through backward, clipped to |W| <= 1 or not; saves W."""

    @staticmethod
    def forward(ctx, w, clipped):
        ctx.save_for_backward(w)
        ctx.clipped = clipped
        return fast_sign_pm1(w).mul_(weight_scale(w))

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return (_clipped_grad(grad, w) if ctx.clipped else grad), None


def fast_binarize_weight(w: torch.Tensor, grad: str = "clipped") -> torch.Tensor:
    """:func:`binarize_weight` with the fast sign and a one-pass backward (same values and gradients)."""
    if grad not in WEIGHT_GRADS:
        raise ValueError(f"unknown weight gradient {grad!r}; choose one of {WEIGHT_GRADS}")
    return _FastBinaryWeight.apply(w, grad == "clipped")


def shift_binarize_activation(x: torch.Tensor, bias: torch.Tensor, grad: str = "approx") -> torch.Tensor:
    """``binarize_activation(x + bias, grad)`` as one autograd Function (same values and gradients for
    finite inputs; ``bias`` broadcasts against ``x``, e.g. (1, C, 1, 1) for NCHW)."""
    if grad not in ACTIVATION_GRADS:
        raise ValueError(f"unknown activation gradient {grad!r}; choose one of {ACTIVATION_GRADS}")
    return _ShiftSign.apply(x, bias, grad)


def approx_sign(x: torch.Tensor) -> torch.Tensor:
    """sign_pm1 forward; ReActNet's piecewise-polynomial gradient backward."""
    return _ApproxSign.apply(x)


def ste_sign(x: torch.Tensor) -> torch.Tensor:
    """sign_pm1 forward; clipped straight-through gradient (1 on |x| <= 1) backward."""
    return _SteSign.apply(x)


def binarize_activation(x: torch.Tensor, grad: str = "approx") -> torch.Tensor:
    """Binarise activations to {-1, +1} (sign(0)=+1) with the chosen surrogate gradient."""
    if grad == "approx":
        return approx_sign(x)
    if grad == "ste":
        return ste_sign(x)
    raise ValueError(f"unknown activation gradient {grad!r}; choose one of {ACTIVATION_GRADS}")


def binarize_weight(w: torch.Tensor, grad: str = "clipped") -> torch.Tensor:
    """alpha_o * sign_pm1(W) forward; backward (alpha constant) straight-through of clamp(W, -1, 1)
    (``grad="clipped"``) or of W itself (``"identity"``)."""
    if grad == "clipped":
        return _BinaryWeight.apply(w)
    if grad == "identity":
        return _BinaryWeightIdentity.apply(w)
    raise ValueError(f"unknown weight gradient {grad!r}; choose one of {WEIGHT_GRADS}")
