"""The realistic full-size model for tests: ReActNet-A with random weights and realistic BN statistics.

Untrained binary nets with default BN statistics are unrealistically benign (every BN is the identity),
so equivalence tests on them prove little. :func:`realistic_reactnet` draws

* latent conv weights ~ N(0, 0.05), resampled until none is exactly 0 (sign(0) is a separate test),
* BatchNorm weight ~ U(0.5, 1.5), bias ~ U(-0.2, 0.2), running mean ~ U(-0.5, 0.5), running var ~ U(0.5, 2),
* learnable biases (RSign shift, RPReLU bias_in / bias_out) ~ U(-0.1, 0.1),

and returns it in eval mode. Use it with real photos (``export.samples.load_inputs("samples", ...)``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from train.models import reactnet_a
from train.models.layers import BinaryConv2d, RPReLU, RSign


@torch.no_grad()
def realistic_reactnet(input_size: int = 224, seed: int = 0, **kw) -> nn.Module:
    """Full-size ReActNet-A (``reactnet_a(input_size=..., **kw)``) with the random state described above."""
    torch.manual_seed(seed)
    model = reactnet_a(input_size=input_size, **kw)
    g = torch.Generator().manual_seed(seed)

    def u(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, (BinaryConv2d, nn.Conv2d)):
            w = torch.randn(m.weight.shape, generator=g) * 0.05
            while (w == 0).any():
                w[w == 0] = torch.randn(int((w == 0).sum()), generator=g) * 0.05
            m.weight.copy_(w)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            n = m.num_features
            m.weight.copy_(u(n, 0.5, 1.5))
            m.bias.copy_(u(n, -0.2, 0.2))
            m.running_mean.copy_(u(n, -0.5, 0.5))
            m.running_var.copy_(u(n, 0.5, 2.0))
        elif isinstance(m, RSign):
            m.bias.copy_(u(m.bias.shape, -0.1, 0.1))
        elif isinstance(m, RPReLU):
            m.bias_in.copy_(u(m.bias_in.shape, -0.1, 0.1))
            m.bias_out.copy_(u(m.bias_out.shape, -0.1, 0.1))
    return model.eval()
