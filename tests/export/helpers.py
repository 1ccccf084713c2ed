"""Shared helpers for export tests: randomised eval statistics and runtime runners (no mocks)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from train.models import reactnet_a
from train.models.layers import RPReLU, RSign


@torch.no_grad()
def randomize_eval_state(model: nn.Module, seed: int = 0, bias_scale: float = 0.3) -> nn.Module:
    """Random BN running stats/affine, RSign thresholds and RPReLU biases/slopes (so nothing is trivially 0)."""
    g = torch.Generator().manual_seed(seed)

    def u(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            n = m.num_features
            m.running_mean.copy_(u(n, -1, 1))
            m.running_var.copy_(u(n, 0.5, 2.0))
            m.weight.copy_(u(n, 0.5, 1.5))
            m.bias.copy_(u(n, -1, 1))
        elif isinstance(m, RSign):
            m.bias.copy_(u(m.bias.shape, -bias_scale, bias_scale))
        elif isinstance(m, RPReLU):
            m.bias_in.copy_(u(m.bias_in.shape, -bias_scale, bias_scale))
            m.bias_out.copy_(u(m.bias_out.shape, -bias_scale, bias_scale))
            m.prelu.weight.copy_(u(m.prelu.weight.shape, 0.05, 0.5))
    return model.eval()


def torch_out(model, x: torch.Tensor, output: str = "logits") -> np.ndarray:
    with torch.no_grad():
        return (model.forward_features(x) if output == "features" else model(x)).numpy()


def ort_run(proto_or_bytes, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    data = proto_or_bytes if isinstance(proto_or_bytes, bytes) else proto_or_bytes.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x.numpy()})[0]


def lce_run(flatbuffer: bytes, x: torch.Tensor, kernel: str = "default") -> np.ndarray:
    """Run an LCE/TFLite flatbuffer image by image: (N, 3, S, S) NCHW torch -> stacked outputs (NCHW if spatial)."""
    from export.lce import interpreter

    it = interpreter(flatbuffer, kernel)
    ys = [it.predict(np.ascontiguousarray(img.permute(1, 2, 0).numpy()[None]))[0] for img in x]
    y = np.stack(ys)
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref|."""
    return float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))


def edge_case_model():
    """2 blocks where blocks.0's binariser sees exact zeros and blocks.0.conv3x3 has exact-zero weights."""
    torch.manual_seed(1)
    model = randomize_eval_state(reactnet_a(width=0.25, input_size=16, num_classes=10, num_blocks=2), seed=1)
    with torch.no_grad():
        stem = model.stem
        stem.conv.weight[:4] = 0  # channels 0..3 of the stem output are exactly beta (mean 0)
        stem.bn.running_mean[:4] = 0
        model.blocks[0].rsign1.bias[0, :4, 0, 0] = -stem.bn.bias[:4]  # x + b == 0 exactly -> sign +1
        w = model.blocks[0].conv3x3.weight
        w[:, :, 1, 1] = 0  # exact-zero latent weights: export must map them to +alpha, not 0
    return model
