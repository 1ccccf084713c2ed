"""ReActNet building blocks: RSign, RPReLU, BinaryConv2d and GlobalAvgPool (+ the teacher's FastMaxPool2d).

All tensors are NCHW. Every module here but :class:`FastMaxPool2d` (used only by the float teacher) has a
converter in ``export/`` (ONNX and LCE), so a new layer type added here needs one converter there -- never
a second copy of the network.

Fast path: ``RSign``, ``RPReLU`` and ``BinaryConv2d`` carry ``fast`` (default True), which runs their
elementwise chain as one autograd Function each (:func:`train.binary.shift_binarize_activation`,
:func:`rprelu`, :func:`train.binary.fast_binarize_weight`) instead of the plain composition of PyTorch
ops; :class:`FastMaxPool2d` (the float teacher's stem pool) pools in channels_last memory when no graph
is built. Values and gradients are equal for finite inputs (weight gradients of RPReLU's slope up to float
summation order); :func:`set_fast` switches a whole network (``--no-fast-step``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.binary import (
    binarize_activation,
    binarize_weight,
    fast_binarize_weight,
    shift_binarize_activation,
    sign_pm1,
    weight_scale,
)

PADDING_MODES = ("zero", "one")


class RSign(nn.Module):
    """ReAct-Sign: ``sign_pm1(x + b)`` with a learnable per-channel shift ``b`` of shape (1, C, 1, 1).

    (N, C, H, W) -> same shape in {-1, +1}; +1 exactly where ``x >= -b`` (sign(0) = +1).
    ``grad`` picks the surrogate gradient (see :func:`train.binary.binarize_activation`).
    """

    def __init__(self, channels: int, grad: str = "approx"):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.grad = grad
        self.fast = True

    def pre_sign(self, x: torch.Tensor) -> torch.Tensor:
        """The latent float activation a_F = x + b that is binarised (same shape as x)."""
        return x + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:
            return shift_binarize_activation(x, self.bias, self.grad)
        return binarize_activation(self.pre_sign(x), self.grad)

    def threshold(self) -> torch.Tensor:
        """Per-channel threshold t (shape (C,)) with output = where(x >= t, 1, -1); t = -b."""
        return -self.bias.detach().reshape(-1)


class _RPReLU(torch.autograd.Function):
    """prelu(x + bias_in, slope) + bias_out; saves t = x + bias_in (as PReLU itself does).

    Backward without PyTorch's PReLU backward kernel (about 10x a float pass on this CPU): with
    ``g+ = threshold_backward(g, t, 0)`` (g where t > 0) and ``g- = g - g+``, d/dt = g+ + slope * g-
    (exactly g or slope * g per element) and d/dslope = sum(g- * t) over all but the channel axis.
    """

    @staticmethod
    def forward(ctx, x, bias_in, slope, bias_out):
        t = x + bias_in
        shape = (1, -1) + (1,) * (t.dim() - 2)  # slope (C,) -> broadcast on the channel axis
        ctx.save_for_backward(t, slope)
        ctx.shapes = (x.dtype, bias_in.shape, bias_out.shape, shape)
        return F.prelu(t, slope).add_(bias_out)

    @staticmethod
    def backward(ctx, grad):
        t, slope = ctx.saved_tensors
        x_dtype, bin_shape, bout_shape, shape = ctx.shapes
        grad = grad.to(t.dtype)
        pos = torch.ops.aten.threshold_backward(grad, t, 0)  # grad where t > 0, else 0
        neg = grad - pos  # grad where t <= 0, else 0
        gt = torch.addcmul(pos, neg, slope.reshape(shape))
        need = ctx.needs_input_grad
        dims = [d for d in range(t.dim()) if d != 1]
        return (gt.to(x_dtype) if need[0] else None,
                gt.sum_to_size(bin_shape) if need[1] else None,
                _slope_grad(neg.mul_(t), dims, slope) if need[2] else None,
                grad.sum_to_size(bout_shape) if need[3] else None)


def _slope_grad(prod: torch.Tensor, dims: list[int], slope: torch.Tensor) -> torch.Tensor:
    """Sum g- * t per channel (one shared slope: over everything), shaped like ``slope``."""
    return (prod.sum() if slope.numel() == 1 else prod.sum(dims)).reshape(slope.shape)


def rprelu(x: torch.Tensor, bias_in: torch.Tensor, slope: torch.Tensor, bias_out: torch.Tensor) -> torch.Tensor:
    """``prelu(x + bias_in, slope) + bias_out`` as one autograd Function. x: (N, C, ...); bias_in /
    bias_out broadcast against x ((1, C, 1, 1)); slope (C,) or (1,)."""
    return _RPReLU.apply(x, bias_in, slope, bias_out)


class RPReLU(nn.Module):
    """ReAct-PReLU: ``prelu(x + bias_in) + bias_out``, all per channel. (N, C, H, W) -> same shape."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias_in = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.prelu = nn.PReLU(channels)
        self.bias_out = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:
            return rprelu(x, self.bias_in, self.prelu.weight, self.bias_out)
        return self.prelu(x + self.bias_in) + self.bias_out


class BinaryConv2d(nn.Module):
    """Convolution of an already-binarised input ({-1, +1}, NCHW) with optional binary weights.

    * ``binary_weights=False`` (stage 1): the float latent weight is used as is.
    * ``binary_weights=True`` (stage 2): weight = alpha_o * sign_pm1(W), alpha_o = mean|W[o]|
      over (C_in, kH, kW); straight-through gradient to W (see :mod:`train.binary`), clipped to
      |W| <= 1 or not per ``weight_grad`` ("clipped" / "identity"; a training choice, not architecture).
    * ``padding="zero"`` pads the binary input with 0 (official ReActNet, PyTorch ``padding=k//2``);
      ``padding="one"`` pads with +1 (LCE's fast "same-one" path on ARM). Both use PyTorch's
      symmetric geometry: k//2 on every side.

    The latent weight keeps nn.Conv2d's layout (C_out, C_in, kH, kW) and name ``weight``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: str = "zero", binary_weights: bool = True):
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"unknown padding {padding!r}; choose one of {PADDING_MODES}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.binary_weights = binary_weights
        self.weight_grad = "clipped"
        self.fast = True
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=False)  # PyTorch's default init
        self.weight = nn.Parameter(conv.weight.detach().clone())

    @property
    def pad(self) -> int:
        return self.kernel_size // 2

    def effective_weight(self) -> torch.Tensor:
        """The weight forward() convolves with: (C_out, C_in, kH, kW)."""
        if not self.binary_weights:
            return self.weight
        binarize = fast_binarize_weight if self.fast else binarize_weight
        return binarize(self.weight, self.weight_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.effective_weight()
        if self.pad and self.padding == "one":
            x = F.pad(x, (self.pad,) * 4, value=1.0)
            return F.conv2d(x, w, stride=self.stride)
        return F.conv2d(x, w, stride=self.stride, padding=self.pad)

    @torch.no_grad()
    def export_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Export view of a binary-weight conv: ``(signs, alpha)`` with forward's weight = alpha * signs.

        signs: (C_out, C_in, kH, kW) in {-1, +1} (no zeros: sign(0)=+1); alpha: (C_out,).
        Raises ValueError for a float-weight (stage-1) conv or an all-zero output channel (alpha = 0),
        which no binary kernel can represent.
        """
        if not self.binary_weights:
            raise ValueError("export_kernel() needs binary_weights=True (a stage-2 network)")
        alpha = weight_scale(self.weight).reshape(-1)
        if bool((alpha == 0).any()):
            bad = (alpha == 0).nonzero().reshape(-1).tolist()
            raise ValueError(f"output channel(s) {bad[:8]} have all-zero weights (alpha = 0)")
        return sign_pm1(self.weight), alpha

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, binary_weights={self.binary_weights}")


class GlobalAvgPool(nn.Module):
    """Global average pooling + flatten: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class FastMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` (NCHW in, NCHW out, the same values) that, with ``fast`` on and no autograd graph
    to build, pools in channels_last memory on CPU: PyTorch's NCHW CPU max-pool kernel took 9.2 ms for
    (128, 64, 16, 16) here against 1.6 ms including the two layout copies (the frozen teacher's stem:
    ~5 % of the digits-tiny step). With a graph the plain kernel runs, so the gradient of a tie (common
    after ReLU) goes where it always went; inside ``torch.compile`` too (Inductor writes its own loop)."""

    fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not self.fast or x.device.type != "cpu" or x.dim() != 4 or (torch.is_grad_enabled() and x.requires_grad)
                or torch.compiler.is_compiling()):
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


FAST_MODULES = (RSign, RPReLU, BinaryConv2d, FastMaxPool2d)


def set_fast(module: nn.Module, on: bool = True) -> nn.Module:
    """Switch the fast path (see the module doc) of every layer in ``module`` on or off; returns module."""
    for m in module.modules():
        if isinstance(m, FAST_MODULES):
            m.fast = on
    return module
