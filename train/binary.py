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
