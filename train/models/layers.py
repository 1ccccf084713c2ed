"""ReActNet building blocks: RSign, RPReLU, BinaryConv2d and GlobalAvgPool.

All tensors are NCHW. Every module here has a converter in ``export/`` (ONNX and LCE), so a new
layer type added here needs one converter there -- never a second copy of the network.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.binary import binarize_activation, binarize_weight, sign_pm1, weight_scale

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

    def pre_sign(self, x: torch.Tensor) -> torch.Tensor:
        """The latent float activation a_F = x + b that is binarised (same shape as x)."""
        return x + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binarize_activation(self.pre_sign(x), self.grad)

    def threshold(self) -> torch.Tensor:
        """Per-channel threshold t (shape (C,)) with output = where(x >= t, 1, -1); t = -b."""
        return -self.bias.detach().reshape(-1)


class RPReLU(nn.Module):
    """ReAct-PReLU: ``prelu(x + bias_in) + bias_out``, all per channel. (N, C, H, W) -> same shape."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias_in = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.prelu = nn.PReLU(channels)
        self.bias_out = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=False)  # PyTorch's default init
        self.weight = nn.Parameter(conv.weight.detach().clone())

    @property
    def pad(self) -> int:
        return self.kernel_size // 2

    def effective_weight(self) -> torch.Tensor:
        """The weight forward() convolves with: (C_out, C_in, kH, kW)."""
        return binarize_weight(self.weight, self.weight_grad) if self.binary_weights else self.weight

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
