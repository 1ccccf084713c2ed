"""Shared helpers for export tests: randomised eval statistics and runtime runners (no mocks)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from runtimes.session import open_session
from runtimes.tflite_flatbuffer import model_bytes, model_object
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
    data = proto_or_bytes if isinstance(proto_or_bytes, bytes) else proto_or_bytes.SerializeToString()
    return next(iter(open_session(data, "onnxruntime").run({"input": x.numpy()}).values()))


def lce_run(flatbuffer: bytes, x: torch.Tensor, kernel: str = "default") -> np.ndarray:
    """Run an LCE/TFLite flatbuffer image by image: (N, 3, S, S) NCHW torch -> stacked outputs (NCHW if spatial)."""
    sess = open_session(flatbuffer, f"lce-{kernel}")
    y = next(iter(sess.run_batched([np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())]).values()))
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


# ------------------------------------------------------------------------ editing real exported files
# Valid-but-wrong files for the equivalence gate: each edits the bytes an exporter wrote (never the
# converter), and writes back a well-formed file (a protobuf / a flatbuffer built with the schema's object API).

def corrupt_onnx_initializer(data: bytes, prefix: str, factor: float = -3.0,
                             fraction: float = 0.25) -> tuple[bytes, str]:
    """Multiply ``fraction`` of the first 1-D initializer whose name starts with ``prefix`` (e.g.
    ``"blocks/2/bn1/"``) by ``factor``. Returns (new ONNX bytes, the initializer's name)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(data)
    t = next(t for t in proto.graph.initializer if t.name.startswith(prefix) and len(t.dims) == 1)
    a = numpy_helper.to_array(t).copy()
    a[: max(1, int(len(a) * fraction))] *= factor
    t.CopyFrom(numpy_helper.from_array(a, t.name))
    return proto.SerializeToString(), t.name


def corrupt_tflite_constant(data: bytes, op_type: str, output_contains: str, input_index: int,
                            channel: int = 0, factor: float = -3.0) -> tuple[bytes, str]:
    """Multiply one float32 value (``channel``) of constant input ``input_index`` of the first ``op_type``
    operator whose output tensor name contains ``output_contains`` by ``factor`` (e.g. one channel of an
    ``LceBconv2d``'s fused post-activation multiplier, input 2). Returns (new flatbuffer, the op's output name)."""
    from runtimes.tflite_flatbuffer import read_ops

    names = [o.name for o in read_ops(data)]
    mt = model_object(data)
    g = mt.subgraphs[0]
    for i, op in enumerate(g.operators):
        out = g.tensors[op.outputs[0]].name.decode()
        if names[i] == op_type and output_contains in out:
            buf = mt.buffers[g.tensors[op.inputs[input_index]].buffer]
            vals = np.frombuffer(bytes(bytearray(buf.data)), np.float32).copy()
            vals[channel] *= factor
            buf.data = np.frombuffer(vals.tobytes(), np.uint8)
            return model_bytes(mt), out
    raise LookupError(f"no {op_type} writing a tensor named *{output_contains}*")


def strip_marks(kind: str, data: bytes) -> bytes:
    """The same file without its stage marks (``burn_edge/...`` names renamed), as another tool or an older
    burn-edge would write it."""
    from export.stage_cut import MARK_PREFIX

    if kind == "onnx":
        import onnx

        proto = onnx.load_from_string(data)
        ren = lambda v: v.replace(MARK_PREFIX, "value_") if v.startswith(MARK_PREFIX) else v
        for nd in proto.graph.node:
            nd.input[:] = [ren(v) for v in nd.input]
            nd.output[:] = [ren(v) for v in nd.output]
        return proto.SerializeToString()
    mt = model_object(data)
    for t in mt.subgraphs[0].tensors:
        if t.name and t.name.decode().startswith(MARK_PREFIX):
            t.name = t.name.decode().replace(MARK_PREFIX, "tensor_").encode()
    return model_bytes(mt)
