"""ONNX export: the ReActNet-A module tree -> an ``onnx.ModelProto`` built with ``onnx.helper``.

Graph contract (see ``build_onnx``):

* input ``input``: float32 (batch, 3, S, S), NCHW, normalised with the metadata mean/std; batch is dynamic.
* output ``logits`` (batch, num_classes), ``features`` (batch, C_last), or, with ``upto``, the stage output
  named after the stage (e.g. ``blocks.3``: (batch, C, H, W)).
* activation binariser: ``Where(x >= t, 1, -1)`` with t = -b per channel, so sign(0) = +1 exactly as in
  PyTorch (``Sign`` is never used: ONNX Sign(0) = 0).
* binary weights folded to constants alpha_o * sign(W) (no zeros); BN in inference form
  (``BatchNormalization``, running statistics); zero/one padding as in training (``Pad`` with 1.0 for "one").
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from export.common import check_output, check_upto, stage_io
from export.errors import ExportError
from export.registry import ConverterRegistry, WalkContext
from train.models.layers import BinaryConv2d, GlobalAvgPool, RPReLU, RSign
from train.models.reactnet import Block, ReActNetA, Stem

OPSET = 21       # supported by onnx 1.17 (max 22) and onnxruntime >= 1.20
IR_VERSION = 10  # onnx 1.17's IR version

REGISTRY = ConverterRegistry("ONNX")
converter = REGISTRY.converter


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class OnnxContext(WalkContext):
    """Collects nodes and initializers; values are ONNX tensor names."""

    def __init__(self):
        super().__init__(REGISTRY)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.stage_values: dict[str, str] = {}  # stage name -> its output value (see ReActNetA's converter)
        self._n = 0

    def _name(self, hint: str) -> str:
        self._n += 1
        base = (self.path or "graph").replace(".", "/")
        return f"{base}/{hint}_{self._n}"

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self._name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self._name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


# ------------------------------------------------------------------------------ leaf converters

@converter(nn.Conv2d)
def _conv(m: nn.Conv2d, x: str, ctx: OnnxContext) -> str:
    ins = [x, ctx.const("weight", _np(m.weight))]
    if m.bias is not None:
        ins.append(ctx.const("bias", _np(m.bias)))
    ph, pw = m.padding
    return ctx.op("Conv", ins, kernel_shape=list(m.kernel_size), strides=list(m.stride), pads=[ph, pw, ph, pw],
                  dilations=list(m.dilation), group=m.groups)


@converter(nn.BatchNorm2d, nn.BatchNorm1d)
def _bn(m: nn.BatchNorm2d, x: str, ctx: OnnxContext) -> str:
    c = m.num_features
    gamma = _np(m.weight) if m.affine else np.ones(c, np.float32)
    beta = _np(m.bias) if m.affine else np.zeros(c, np.float32)
    ins = [x, ctx.const("gamma", gamma), ctx.const("beta", beta), ctx.const("mean", _np(m.running_mean)),
           ctx.const("var", _np(m.running_var))]
    return ctx.op("BatchNormalization", ins, epsilon=float(m.eps))


@converter(RSign)
def _rsign(m: RSign, x: str, ctx: OnnxContext) -> str:
    t = _np(m.threshold()).reshape(1, -1, 1, 1)  # (1, C, 1, 1); x + b >= 0  <=>  x >= -b exactly in IEEE
    cond = ctx.op("GreaterOrEqual", [x, ctx.const("threshold", t)])
    one, minus = ctx.const("one", np.array(1.0, np.float32)), ctx.const("minus_one", np.array(-1.0, np.float32))
    return ctx.op("Where", [cond, one, minus], hint="sign")


@converter(BinaryConv2d)
def _bconv(m: BinaryConv2d, x: str, ctx: OnnxContext) -> str:
    if m.binary_weights:
        signs, alpha = m.export_kernel()
        w = _np(signs * alpha.reshape(-1, 1, 1, 1))  # +-alpha_o, never 0
    else:
        w = _np(m.weight)  # stage 1: float latent weights
    p, k = m.pad, m.kernel_size
    if p and m.padding == "one":
        pads = ctx.const("pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))  # NCHW begins, then ends
        x = ctx.op("Pad", [x, pads, ctx.const("pad_value", np.array(1.0, np.float32))], mode="constant")
        p = 0
    return ctx.op("Conv", [x, ctx.const("weight", w)], kernel_shape=[k, k], strides=[m.stride] * 2, pads=[p] * 4)


@converter(nn.AvgPool2d)
def _avgpool(m: nn.AvgPool2d, x: str, ctx: OnnxContext) -> str:
    k, s = m.kernel_size, m.stride
    k, s = (k, k) if isinstance(k, int) else k, (s, s) if isinstance(s, int) else s
    if m.padding not in (0, (0, 0)) or m.ceil_mode:
        raise ValueError(f"{ctx.path}: only unpadded AvgPool2d without ceil_mode is exported")
    return ctx.op("AveragePool", [x], kernel_shape=list(k), strides=list(s))


@converter(nn.Identity)
def _identity(m: nn.Identity, x: str, ctx: OnnxContext) -> str:
    return x


@converter(nn.PReLU)
def _prelu(m: nn.PReLU, x: str, ctx: OnnxContext) -> str:
    return ctx.op("PRelu", [x, ctx.const("slope", _np(m.weight).reshape(-1, 1, 1))])  # (C, 1, 1) broadcasts on NCHW


@converter(RPReLU)
def _rprelu(m: RPReLU, x: str, ctx: OnnxContext) -> str:
    x = ctx.op("Add", [x, ctx.const("bias_in", _np(m.bias_in))])
    x = ctx.convert(m.prelu, x, "prelu")
    return ctx.op("Add", [x, ctx.const("bias_out", _np(m.bias_out))])


@converter(GlobalAvgPool)
def _gap(m: GlobalAvgPool, x: str, ctx: OnnxContext) -> str:
    return ctx.op("Flatten", [ctx.op("GlobalAveragePool", [x])], axis=1)  # (N, C, H, W) -> (N, C)


@converter(nn.Linear)
def _linear(m: nn.Linear, x: str, ctx: OnnxContext) -> str:
    ins = [x, ctx.const("weight", _np(m.weight))]
    if m.bias is not None:
        ins.append(ctx.const("bias", _np(m.bias)))
    return ctx.op("Gemm", ins, transB=1)


@converter(nn.ReLU)
def _relu(m: nn.ReLU, x: str, ctx: OnnxContext) -> str:
    return ctx.op("Relu", [x])


# ------------------------------------------------------------------------------ composite converters

@converter(nn.Sequential)
def _sequential(m: nn.Sequential, x: str, ctx: OnnxContext) -> str:
    for name, child in m.named_children():
        x = ctx.convert(child, x, name)
    return x


@converter(Stem)
def _stem(m: Stem, x: str, ctx: OnnxContext) -> str:
    return ctx.convert(m.bn, ctx.convert(m.conv, x, "conv"), "bn")


@converter(Block)
def _block(m: Block, x: str, ctx: OnnxContext) -> str:
    return ctx.convert_dataflow(m, x, add=lambda a, b: ctx.op("Add", [a, b]),
                                concat=lambda vs: ctx.op("Concat", vs, axis=1))


@converter(ReActNetA)
def _reactnet(m: ReActNetA, x: str, ctx: OnnxContext) -> str:
    for name, stage in m.stages(ctx.output):
        x = ctx.convert(stage, x, name)
        ctx.stage_values[name] = x
        if ctx.upto == name:
            break
    return x


# ------------------------------------------------------------------------------ public API

def _output_shape(model: ReActNetA, output: str, upto: str | None, size: int) -> list[int]:
    """Shape of one sample's output: [C, H, W] for a stage tap, else [num_classes] / [C_last]."""
    if upto is not None:
        f = next(f for f in model.feature_info() if f["module"] == upto)
        return [f["num_chs"], size // f["reduction"], size // f["reduction"]]
    return [model.cfg.num_classes if output == "logits" else model.cfg.feature_dim()]


@torch.no_grad()
def build_onnx(model: ReActNetA, output: str = "logits", upto: str | None = None,
               metadata: dict[str, str] | None = None, input_size: int | None = None, *,
               taps=None, marks: bool = True) -> onnx.ModelProto:
    """Build the ONNX graph of ``model`` (eval semantics; the module is not modified).

    model:      a ReActNetA (stage 1 or 2).
    output:     "logits" -> (batch, num_classes) named ``logits``; "features" -> (batch, C_last) named
                ``features`` (the pooled k_phi features, no head).
    upto:       None, or a ``model.feature_info()`` module path ("stem", "blocks.3"): the graph stops after
                that stage and outputs its (batch, C, H, W) map, named after the stage.
    metadata:   string key/values stored as ``metadata_props`` (see ``export.common.make_metadata``).
    input_size: spatial size S of the declared input (default ``model.cfg.input_size``).
    taps:       optional list of ``model.stages()`` names: the graph then outputs exactly those stages'
                outputs of the whole (chained) network, named after the stage, in that order.
    Returns a checked ``onnx.ModelProto`` with input ``input`` (batch, 3, S, S) float32 NCHW.
    """
    check_output(output)
    check_upto(model, upto)
    size = int(input_size or model.cfg.input_size)
    ctx = OnnxContext()
    ctx.output, ctx.upto = output, upto
    y = ctx.convert(model, "input")
    x_info = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])
    if taps:
        shapes = {st.name: st.out_shape for st in stage_io(model, output, size)}
        outs = []
        for t in taps:
            if t not in ctx.stage_values:
                raise ExportError(f"tap {t!r} is not a stage of this network; choose from {list(shapes)}")
            ctx.nodes.append(helper.make_node("Identity", [ctx.stage_values[t]], [t], name=f"{t}/output"))
            outs.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, ["batch", *shapes[t]]))
        return _finish(ctx, [x_info], outs, metadata)
    if upto is None and marks:
        y = _name_marks(model, output, ctx, y)
    out_name = upto or output
    ctx.nodes.append(helper.make_node("Identity", [y], [out_name], name=f"{out_name}/output"))
    y_shape = ["batch", *_output_shape(model, output, upto, size)]
    y_info = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, y_shape)
    return _finish(ctx, [x_info], [y_info], metadata)


def _name_marks(model: ReActNetA, output: str, ctx: OnnxContext, y: str) -> str:
    """Rename every stage-mark value ``burn_edge/<key>`` (:mod:`export.stage_cut`); returns y's new name."""
    from export.stage_cut import mark, mark_keys

    values = ctx.stage_values | ctx.presigns
    rename = {values[k]: mark(k) for stage, inner in mark_keys(model, output) for k in inner + [stage]}
    for nd in ctx.nodes:
        nd.input[:] = [rename.get(v, v) for v in nd.input]
        nd.output[:] = [rename.get(v, v) for v in nd.output]
    return rename.get(y, y)


def _finish(ctx: OnnxContext, inputs: list, outputs: list, metadata: dict[str, str] | None) -> onnx.ModelProto:
    graph = helper.make_graph(ctx.nodes, "reactnet_a", inputs, outputs, initializer=ctx.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="burn-edge",
                              ir_version=IR_VERSION)
    proto.doc_string = "ReActNet-A exported by burn-edge (input NCHW, normalised with burn_edge.mean/std)"
    for k, v in (metadata or {}).items():
        proto.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(proto)
    return onnx.shape_inference.infer_shapes(proto)


@torch.no_grad()
def build_isolated(model: ReActNetA, output: str = "logits", input_size: int | None = None) -> onnx.ModelProto:
    """Every stage of ``model.stages(output)`` as its own subgraph, side by side in one graph (teacher forcing).

    Inputs ``<stage>:in`` (the stage's (batch, ...) input, e.g. ``blocks.3:in``); outputs ``<stage>`` (its
    output) and ``<stage>:<value>`` for every binariser input inside it that is not the stage input (a
    Block's ``y``), so a harness can feed each stage PyTorch's own input and read back the bits it used.
    Built by the same converters as :func:`build_onnx`; module paths are the same (``blocks.3.bn1``).
    """
    ctx = OnnxContext()
    ctx.output, ctx.upto = check_output(output), None
    ins, outs = [], []
    for st in stage_io(model, output, input_size):
        x = f"{st.name}:in"
        ins.append(helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", *st.in_shape]))
        y = ctx.convert(st.module, x, st.name)
        taps = {st.name: (y, st.out_shape)} | {k: (v, st.presign_shapes[k.split(":")[1]])
                                               for k, v in ctx.presigns.items() if v != x}
        ctx.presigns.clear()
        for name, (value, shape) in taps.items():
            ctx.nodes.append(helper.make_node("Identity", [value], [name], name=f"{name}/output"))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *shape]))
    return _finish(ctx, ins, outs, None)


def save_onnx(proto: onnx.ModelProto, path) -> None:
    """Write ``proto`` to ``path`` atomically (temp file in the same folder, then renamed; single file:
    ReActNet-A is ~117 MB, under the 2 GB protobuf limit)."""
    from common.files import atomic_save

    atomic_save(path, lambda tmp: onnx.save_model(proto, str(tmp)))
