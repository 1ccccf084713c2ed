"""LCE export: the ReActNet-A module tree -> a tf_keras + larq model -> a Larq Compute Engine flatbuffer.

Model contract (see :func:`build_keras`):

* input: float32 (1, S, S, 3), **normal NHWC images** (normalised with the metadata mean/std). Batch size
  is fixed to 1 (LCE's converter needs a static batch to recognise the binariser).
* PyTorch padding geometry is reproduced exactly with the flip trick (docs/export.md, LCE converter facts 4):
  the model flips its input in H and W once (one ``REVERSE_V2``), every 3x3 kernel (stem included) is
  stored flipped, every conv uses TF ``padding="same"``, and spatial outputs (``upto``) are flipped back
  before they leave the model. Everything else in ReActNet-A (1x1 convs, BN, PReLU, biases,
  AvgPool 2x2 on even sizes, global average pooling) commutes with the flip.
* activation binariser: ``tf.where(x >= t, 1.0, -1.0)`` with scalar +-1 constants and a per-channel
  threshold t = -b (sign(0) = +1); LCE turns it into ``SUB`` + ``LceQuantize``.
* binary conv: ``larq.layers.QuantConv2D(padding="same", pad_values=0.0|1.0, input_quantizer=None,
  kernel_quantizer=None, use_bias=False)`` with kernel alpha_o * sign(W) (HWIO, flipped; no zeros), which
  LCE's converter turns into ``LceBconv2d`` with alpha as its per-channel multiplier. 1x1 convs use
  ``padding="valid"`` (identical for 1x1). BN is ``BatchNormalization(epsilon=1e-5)`` (fused into the bconv).
* ``float_model=True`` builds the same graph for the plain TFLite converter (:func:`convert_float`):
  every conv becomes a float ``CONV_2D`` -- the float baseline for benchmarks.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from export.common import check_output, check_upto, stage_io  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.registry import ConverterRegistry, WalkContext  # noqa: E402
from train.models.layers import BinaryConv2d, GlobalAvgPool, RPReLU, RSign  # noqa: E402
from train.models.reactnet import Block, ReActNetA, Stem  # noqa: E402

if not hasattr(keras.layers, "LocallyConnected1D"):  # pragma: no cover - environment problem
    raise ImportError("tf_keras is not importable as legacy Keras 2")
try:
    import larq as lq  # noqa: E402
except AttributeError as e:  # pragma: no cover - larq imported under Keras 3
    raise ImportError("larq needs legacy Keras: set TF_USE_LEGACY_KERAS=1 before importing tensorflow") from e

REGISTRY = ConverterRegistry("LCE")
converter = REGISTRY.converter


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _hwio_flipped(w: torch.Tensor | np.ndarray) -> np.ndarray:
    """(O, I, kH, kW) PyTorch kernel -> (kH, kW, I, O) flipped in both spatial axes (the flip trick)."""
    w = _np(w) if isinstance(w, torch.Tensor) else w
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0)[::-1, ::-1])


# ------------------------------------------------------------------------------ small Keras layers

class ChannelAdd(keras.layers.Layer):
    """x + c with a constant per-channel c of shape (C,) (NHWC broadcast). Folds into LceBconv2d / ADD."""

    def __init__(self, values, **kw):
        super().__init__(**kw)
        self.values = np.asarray(values, np.float32).reshape(-1)

    def call(self, x):
        return x + tf.constant(self.values)

    def get_config(self):
        return {**super().get_config(), "values": self.values.tolist()}


class Binarize(keras.layers.Layer):
    """``tf.where(x >= t, 1.0, -1.0)``: NHWC -> same shape in {-1, +1}; t per channel (C,); sign(0) = +1."""

    def __init__(self, threshold, **kw):
        super().__init__(**kw)
        self.threshold = np.asarray(threshold, np.float32).reshape(-1)

    def call(self, x):
        cond = x >= 0.0 if not self.threshold.any() else x >= tf.constant(self.threshold)
        return tf.where(cond, 1.0, -1.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold.tolist()}


class FlipHW(keras.layers.Layer):
    """Reverse H and W of an NHWC tensor (one ``REVERSE_V2``); its own inverse."""

    def call(self, x):
        return tf.reverse(x, axis=[1, 2])


# ------------------------------------------------------------------------------ walk context

class KerasContext(WalkContext):
    """Values are Keras tensors; Keras layers are named after the module path (``blocks_3_conv3x3``)."""

    def __init__(self, float_model: bool):
        super().__init__(REGISTRY)
        self.float_model = float_model
        self._n: dict[str, int] = {}
        self.stage_tensors: dict = {}  # stage name -> its output tensor (stage marks)

    def name(self, hint: str = "") -> str:
        base = (self.path or "model").replace(".", "_") + (f"_{hint}" if hint else "")
        k = self._n.get(base, 0)
        self._n[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def apply(self, layer: keras.layers.Layer, x, weights: list[np.ndarray] | None = None):
        y = layer(x)
        if weights is not None:
            layer.set_weights(weights)
        return y


def _check_same_padding(m: nn.Conv2d, path: str) -> None:
    k = m.kernel_size[0]
    if (m.kernel_size[0] != m.kernel_size[1] or m.padding != (k // 2, k // 2) or m.dilation != (1, 1)
            or m.groups != 1 or m.padding_mode != "zeros" or k % 2 == 0):
        raise ExportError(f"{path}: only odd square kernels with padding k//2, no dilation/groups are exported")


# ------------------------------------------------------------------------------ leaf converters

@converter(nn.Conv2d)
def _conv(m: nn.Conv2d, x, ctx: KerasContext):
    _check_same_padding(m, ctx.path)
    w = [_hwio_flipped(m.weight)] + ([_np(m.bias)] if m.bias is not None else [])
    layer = keras.layers.Conv2D(m.out_channels, m.kernel_size, strides=m.stride, padding="same",
                                use_bias=m.bias is not None, name=ctx.name())
    return ctx.apply(layer, x, w)


@converter(nn.BatchNorm2d, nn.BatchNorm1d)
def _bn(m: nn.BatchNorm2d, x, ctx: KerasContext):
    c = m.num_features
    gamma = _np(m.weight) if m.affine else np.ones(c, np.float32)
    beta = _np(m.bias) if m.affine else np.zeros(c, np.float32)
    layer = keras.layers.BatchNormalization(axis=-1, epsilon=float(m.eps), name=ctx.name())
    return ctx.apply(layer, x, [gamma, beta, _np(m.running_mean), _np(m.running_var)])


@converter(RSign)
def _rsign(m: RSign, x, ctx: KerasContext):
    return Binarize(_np(m.threshold()), name=ctx.name())(x)


@converter(BinaryConv2d)
def _bconv(m: BinaryConv2d, x, ctx: KerasContext):
    if m.binary_weights:
        signs, alpha = m.export_kernel()
        w = signs * alpha.reshape(-1, 1, 1, 1)  # +-alpha_o, never 0
    else:
        if not ctx.float_model:
            raise ExportError(f"{ctx.path} has float (stage-1) weights; LCE needs binary weights: export a "
                              "stage-2 checkpoint or pass --float for a float TFLite model")
        w = m.weight
    k = m.kernel_size
    layer = lq.layers.QuantConv2D(
        m.out_channels, k, strides=m.stride, padding="same" if k > 1 else "valid",
        pad_values=1.0 if (m.padding == "one" and k > 1) else 0.0,
        input_quantizer=None, kernel_quantizer=None, use_bias=False, name=ctx.name())
    return ctx.apply(layer, x, [_hwio_flipped(w)])


@converter(nn.AvgPool2d)
def _avgpool(m: nn.AvgPool2d, x, ctx: KerasContext):
    k, s = m.kernel_size, m.stride
    if m.padding not in (0, (0, 0)) or m.ceil_mode or k != s or x.shape[1] % k or x.shape[2] % k:
        raise ExportError(f"{ctx.path}: only unpadded AvgPool2d with kernel == stride on divisible sizes "
                          "is exported (it must commute with the H/W flip)")
    return keras.layers.AveragePooling2D(k, s, name=ctx.name())(x)


@converter(nn.Identity)
def _identity(m: nn.Identity, x, ctx: KerasContext):
    return x


@converter(nn.PReLU)
def _prelu(m: nn.PReLU, x, ctx: KerasContext):
    a = _np(m.weight).reshape(1, 1, -1)  # (1, 1, C): one slope per channel, shared over H and W
    if a.shape[-1] == 1:
        a = np.broadcast_to(a, (1, 1, x.shape[-1])).copy()
    layer = keras.layers.PReLU(shared_axes=[1, 2], name=ctx.name())
    return ctx.apply(layer, x, [a])


@converter(RPReLU)
def _rprelu(m: RPReLU, x, ctx: KerasContext):
    x = ChannelAdd(_np(m.bias_in), name=ctx.name("bias_in"))(x)
    x = ctx.convert(m.prelu, x, "prelu")
    return ChannelAdd(_np(m.bias_out), name=ctx.name("bias_out"))(x)


@converter(GlobalAvgPool)
def _gap(m: GlobalAvgPool, x, ctx: KerasContext):
    return keras.layers.GlobalAveragePooling2D(name=ctx.name())(x)  # (1, H, W, C) -> (1, C); flip-invariant


@converter(nn.Linear)
def _linear(m: nn.Linear, x, ctx: KerasContext):
    w = [_np(m.weight).T.copy()] + ([_np(m.bias)] if m.bias is not None else [])
    layer = keras.layers.Dense(m.out_features, use_bias=m.bias is not None, name=ctx.name())
    return ctx.apply(layer, x, w)


@converter(nn.ReLU)
def _relu(m: nn.ReLU, x, ctx: KerasContext):
    return keras.layers.ReLU(name=ctx.name())(x)


# ------------------------------------------------------------------------------ composite converters

@converter(nn.Sequential)
def _sequential(m: nn.Sequential, x, ctx: KerasContext):
    for name, child in m.named_children():
        x = ctx.convert(child, x, name)
    return x


@converter(Stem)
def _stem(m: Stem, x, ctx: KerasContext):
    return ctx.convert(m.bn, ctx.convert(m.conv, x, "conv"), "bn")


@converter(Block)
def _block(m: Block, x, ctx: KerasContext):
    return ctx.convert_dataflow(m, x, add=lambda a, b: keras.layers.Add(name=ctx.name("add"))([a, b]),
                                concat=lambda vs: keras.layers.Concatenate(axis=-1, name=ctx.name("concat"))(vs))


@converter(ReActNetA)
def _reactnet(m: ReActNetA, x, ctx: KerasContext):
    x = FlipHW(name="flip_input")(x)  # the flip trick: PyTorch top/left padding == TF-SAME on flipped images
    for name, stage in m.stages(ctx.output):
        x = ctx.convert(stage, x, name)
        ctx.stage_tensors[name] = x
        if name in ctx.taps:
            ctx.tap_outputs[name] = FlipHW(name=f"tap_{len(ctx.tap_outputs):02d}")(x)
            if len(ctx.tap_outputs) == len(ctx.taps):
                return None  # build_keras returns the taps
        if ctx.upto == name:
            return FlipHW(name="flip_output")(x)
    return x


# ------------------------------------------------------------------------------ public API

@torch.no_grad()
def build_keras(model: ReActNetA, output: str = "logits", upto: str | None = None, *, float_model: bool = False,
                input_size: int | None = None, taps=None, marks: bool = True) -> keras.Model:
    """Build the tf_keras + larq port of ``model`` (eval semantics; the module is not modified).

    Input: (1, S, S, 3) float32, ordinary NHWC images (the H/W flip happens inside the model).
    output: "logits" -> (1, num_classes); "features" -> (1, C_last) pooled features.
    upto: None, or a ``model.feature_info()`` module path ("stem", "blocks.3"): the model stops after that
          stage and outputs its (1, H, W, C) NHWC map (flipped back to normal orientation).
    taps: optional list of stage paths; the model then outputs exactly those stages' (1, H, W, C) maps, in
          that order (one conversion for a per-block comparison; used by ``export.verify``).
    float_model: allow stage-1 float weights (for :func:`convert_float`); binary weights stay +-alpha.
    marks: a whole model (no ``upto`` / ``taps``) carries its stage marks to :func:`convert`, which names
           them ``burn_edge/<key>`` in the file (:mod:`export.stage_cut`); names only, no operator changes.
    Raises ExportError for stage-1 weights unless ``float_model``, UnsupportedModuleError for unknown modules.
    """
    check_output(output)
    check_upto(model, upto)
    taps = list(taps or [])
    for t in taps:
        check_upto(model, t)
    size = int(input_size or model.cfg.input_size)
    ctx = KerasContext(float_model)
    ctx.output, ctx.upto, ctx.taps, ctx.tap_outputs = output, upto, set(taps), {}
    inp = keras.Input(shape=(size, size, 3), batch_size=1, name="input")
    y = ctx.convert(model, inp)
    if taps:
        return keras.Model(inp, [ctx.tap_outputs[t] for t in taps], name="reactnet_a_taps")
    km = keras.Model(inp, y, name="reactnet_a")
    km.burn_edge_marks = _mark_tensors(model, output, ctx) if marks and not upto else None
    return km


def _mark_tensors(model: ReActNetA, output: str, ctx: KerasContext) -> list:
    """[(key, Keras tensor)] of every stage mark but the last (the model output), in order."""
    from export.stage_cut import mark_keys

    keys = [k for stage, inner in mark_keys(model, output) for k in inner + [stage]]
    values = ctx.stage_tensors | ctx.presigns
    return [(k, values[k]) for k in keys[:-1]] + [(keys[-1], None)]


@torch.no_grad()
def build_isolated_keras(model: ReActNetA, output: str = "logits", input_size: int | None = None, *,
                         whole: bool = False) -> tuple[keras.Model, dict[str, str]]:
    """Every stage of ``model.stages(output)`` as its own subgraph, side by side in one model (teacher forcing).

    Input ``s<k>_in`` (k = stage index, 2 digits): stage k's (1, ...) input, NHWC for maps; outputs
    ``s<k>_out`` (its output) and ``s<k>_p<j>`` (the j-th binariser input inside it that is not the stage
    input: a Block's ``y``), maps in normal orientation (each stage flips H/W on entry and exit, exactly
    as the whole model does once). Same converters and module paths as :func:`build_keras`.
    ``whole=True`` adds the whole chained network beside them (input ``input``, output ``whole``), so one
    LCE conversion serves both the end-to-end and the stage comparison.
    Returns the Keras model and {output name: ``"<stage>"``, ``"<stage>:<value>"`` or ``"whole"``}.
    """
    ctx = KerasContext(float_model=False)
    ctx.output, ctx.upto, ctx.taps, ctx.tap_outputs = check_output(output), None, set(), {}
    ins, outs, names = [], [], {}

    for k, st in enumerate(stage_io(model, output, input_size)):
        shape = (*st.in_shape[1:], st.in_shape[0]) if len(st.in_shape) == 3 else st.in_shape
        inp = keras.Input(shape=shape, batch_size=1, name=f"s{k:02d}_in")
        ins.append(inp)
        x = FlipHW(name=f"s{k:02d}_flip_in")(inp) if len(shape) == 3 else inp
        y = ctx.convert(st.module, x, st.name)
        taps = [(f"s{k:02d}_out", st.name, y)] + [
            (f"s{k:02d}_p{j}", key, v) for j, (key, v) in enumerate(
                (key, v) for key, v in ctx.presigns.items() if key.startswith(st.name + ":") and v is not x)]
        ctx.presigns.clear()
        for out_name, key, v in taps:
            outs.append(FlipHW(name=out_name)(v) if len(v.shape) == 4 else
                        keras.layers.Identity(name=out_name)(v))
            names[out_name] = key
    if whole:
        size = int(input_size or model.cfg.input_size)
        ins.append(keras.Input(shape=(size, size, 3), batch_size=1, name="input"))
        outs.append(keras.layers.Identity(name="whole")(ctx.convert(model, ins[-1])))
        names["whole"] = "whole"
    return keras.Model(ins, outs, name="reactnet_a_isolated"), names


def convert(keras_model: keras.Model) -> bytes:
    """LCE-convert a model from :func:`build_keras` (binary weights) into a TFLite flatbuffer with LCE ops.
    A whole model (no ``upto`` / ``taps``) gets its stage marks (:mod:`export.stage_cut`)."""
    import larq_compute_engine as lce

    return _convert_marked(keras_model, lce.convert_keras_model)


def convert_float(keras_model: keras.Model) -> bytes:
    """Convert with the plain TFLite converter: every conv stays a float ``CONV_2D`` (benchmark baseline).
    Stage marks as :func:`convert`."""
    return _convert_marked(keras_model, lambda km: tf.lite.TFLiteConverter.from_keras_model(km).convert())


def _convert_marked(keras_model: keras.Model, convert_fn) -> bytes:
    """Convert ``keras_model``; if it carries ``burn_edge_marks``, each mark tensor first becomes an extra
    output (``mark_<i>``, so the converter keeps and names it), then :func:`export.stage_cut.mark_tflite`
    renames those tensors ``burn_edge/<key>`` and removes the extra outputs again."""
    marks = getattr(keras_model, "burn_edge_marks", None)
    if not marks:
        return convert_fn(keras_model)
    from export.stage_cut import mark_tflite

    extra = {f"mark_{i:02d}": (key, v) for i, (key, v) in enumerate(marks[:-1])}
    outs = [keras_model.output] + [keras.layers.Identity(name=n)(v) for n, (_, v) in extra.items()]
    marked = keras.Model(keras_model.input, outs, name=keras_model.name)
    return mark_tflite(convert_fn(marked), {n: key for n, (key, _) in extra.items()}, marks[-1][0])
