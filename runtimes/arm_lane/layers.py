"""Every ``LceBconv2d`` of an LCE model with the tensors the x86 LCE interpreter gives it for one image.

:func:`extract_layers` adds, for each binary convolution, its bitpacked input, its output and (when an
``LceQuantize`` produced that input) the float tensor before bitpacking to the model's outputs, runs the model
once in the x86 LCE interpreter (its default kernel) and returns one :class:`Layer` per bconv: the real
shape, packed weights, multipliers, biases, thresholds, padding, stride and dilation read from the flatbuffer,
and the interpreter's tensors. :func:`write_layer_file` serialises a layer for the native driver (``driver.cc``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from runtimes.tflite_flatbuffer import LCE_BCONV, check_identifier, load_schema, model_bytes

MAGIC = 0x4C43454C
VERSION = 1
OUT_TYPES = {"float32": 0, "int8": 1, "int32": 2}
TFL_PADDING = {0: 1, 1: 2}  # schema Padding SAME/VALID -> TfLitePadding kTfLitePaddingSame/Valid
TENSOR_NP = {0: np.float32, 2: np.int32, 9: np.int8, 3: np.uint8}


@dataclass
class Layer:
    """One LceBconv2d. Arrays are NHWC; ``input`` is bitpacked int32 [N, H, W, ceil(Cin/32)],
    ``filter`` int32 [Cout, Fh, Fw, ceil(Cin/groups/32)]; ``output`` is what the x86 interpreter wrote
    (float32 [N, Ho, Wo, Cout], int8, or bitpacked int32 [N, Ho, Wo, ceil(Cout/32)])."""

    op: int
    name: str
    input: np.ndarray
    filter: np.ndarray
    multiplier: np.ndarray
    bias: np.ndarray
    thresholds: np.ndarray
    output: np.ndarray
    channels_in: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: str  # "SAME" / "VALID"
    pad_value: int
    activation: int  # TfLiteFusedActivation (0 none, 1 relu, 2 relu_n1_to_1, 3 relu6)
    out_type: str  # float32 / int8 / int32
    int8_scale: float = 1.0
    int8_zero_point: int = 0
    float_input: np.ndarray | None = None  # the LceQuantize input [N, H, W, Cin], when there is one
    extra: dict = field(default_factory=dict)

    @property
    def channels_out(self) -> int:
        return int(self.filter.shape[0])

    @property
    def groups(self) -> int:
        packed = (self.channels_in + 31) // 32
        return max(1, packed // int(self.filter.shape[3]))

    @property
    def out_hw(self) -> tuple[int, int]:
        return int(self.output.shape[1]), int(self.output.shape[2])

    def describe(self) -> str:
        n, h, w, _ = self.input.shape
        fh, fw = self.filter.shape[1:3]
        pad = f"{self.padding.lower()}-{'one' if self.pad_value else 'zero'}" if self.padding == "SAME" else "valid"
        s = f"/{self.stride[0]}" if self.stride[0] > 1 else ""
        return f"{fh}x{fw}{s} {h}x{w}x{self.channels_in}->{self.channels_out} {pad}"


def _tensor_array(model, g, t: int) -> np.ndarray | None:
    if t < 0:
        return None
    tensor = g.tensors[t]
    buf = model.buffers[tensor.buffer]
    if buf is None or buf.data is None or len(buf.data) == 0:
        return None
    dtype = TENSOR_NP.get(tensor.type)
    if dtype is None:
        raise ModelFileError(f"tensor {t} has unsupported type {tensor.type}")
    return np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), dtype).reshape(list(tensor.shape))


def _options(op) -> dict:
    from flatbuffers import flexbuffers

    raw = np.asarray(op.customOptions, np.uint8).tobytes() if op.customOptions is not None else b""
    return dict(flexbuffers.Loads(raw)) if raw else {}


def model_with_bconv_tensors(data: bytes, what: str = "model") -> tuple[bytes, list[dict]]:
    """The model with every bconv's input/output (and its LceQuantize's float input) appended to the
    subgraph outputs, and per bconv ``{"op", "tensors": {...}, "options", "params": {...}}``."""
    check_identifier(data, what)
    schema = load_schema()
    if schema is None:
        raise ModelFileError("reading LCE layers needs TensorFlow's TFLite schema (pip install tensorflow)")
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    g = model.subgraphs[0]
    codes = [(c.customCode.decode() if isinstance(c.customCode, bytes) else c.customCode) or ""
             for c in model.operatorCodes]
    producer = {}
    for i, op in enumerate(g.operators):
        for t in op.outputs:
            producer[int(t)] = i
    outputs = [int(t) for t in g.outputs]
    extra: list[int] = []
    found = []
    for i, op in enumerate(g.operators):
        if codes[op.opcodeIndex] != LCE_BCONV:
            continue
        ins = [int(t) for t in op.inputs] + [-1] * 5
        t_in, t_out = ins[0], int(op.outputs[0])
        p = producer.get(t_in)
        t_float = -1
        if p is not None and codes[g.operators[p].opcodeIndex] == "LceQuantize":
            t_float = int(g.operators[p].inputs[0])
        out_t = g.tensors[t_out]
        q = out_t.quantization
        params = {"filter": _tensor_array(model, g, ins[1]), "multiplier": _tensor_array(model, g, ins[2]),
                  "bias": _tensor_array(model, g, ins[3]), "thresholds": _tensor_array(model, g, ins[4]),
                  "out_type": {0: "float32", 9: "int8", 2: "int32"}.get(out_t.type, str(out_t.type)),
                  "int8_scale": float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 1.0,
                  "int8_zero_point": int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None
                  and len(q.zeroPoint) else 0}
        found.append({"op": i, "tensors": {"input": t_in, "output": t_out, "float_input": t_float},
                      "options": _options(op), "params": params})
        for t in (t_in, t_out, t_float):
            if t >= 0 and t not in outputs and t not in extra:
                extra.append(t)
    if not found:
        raise ModelFileError(f"{what}: no LceBconv2d op (not an LCE model?)")
    g.outputs = np.asarray(outputs + extra, np.int32)
    return model_bytes(model, len(data) + 1024), found


def extract_layers(model_path: str | Path, image: np.ndarray) -> list[Layer]:
    """Run ``model_path`` once on ``image`` (already in the model's input layout, batch 1) in the x86 LCE
    interpreter (default kernel, 1 thread) and return every LceBconv2d with its real tensors."""
    from runtimes.session import Engine, open_session

    path = Path(model_path)
    data = path.read_bytes()
    ext, found = model_with_bconv_tensors(data, str(path))
    sess = open_session(ext, Engine("lce", "default"), threads=1, xnnpack=False, what=str(path))
    schema = load_schema()
    g = schema.Model.GetRootAs(ext, 0).Subgraphs(0)
    order = [g.Outputs(i) for i in range(g.OutputsLength())]
    values = dict(zip(order, sess.run([np.ascontiguousarray(image)]).values()))
    layers = []
    for f in found:
        o, t, p = f["options"], f["tensors"], f["params"]
        filt = p["filter"]
        if filt is None:
            raise ModelFileError(f"{path}: LceBconv2d op {f['op']} has no constant filter")
        cout = int(filt.shape[0])
        zeros = np.zeros(cout, np.float32)
        layers.append(Layer(
            op=f["op"], name=f"op{f['op']}", input=np.asarray(values[t["input"]], np.int32),
            filter=np.asarray(filt, np.int32),
            multiplier=p["multiplier"] if p["multiplier"] is not None else zeros + 1,
            bias=p["bias"] if p["bias"] is not None else zeros,
            thresholds=p["thresholds"] if p["thresholds"] is not None else np.zeros(cout, np.int32),
            output=np.asarray(values[t["output"]]), channels_in=int(o["channels_in"]),
            stride=(int(o["stride_height"]), int(o["stride_width"])),
            dilation=(int(o["dilation_height_factor"]), int(o["dilation_width_factor"])),
            padding={0: "SAME", 1: "VALID"}[int(o["padding"])], pad_value=int(o["pad_values"]),
            activation=int(o["fused_activation_function"]), out_type=p["out_type"],
            int8_scale=p["int8_scale"], int8_zero_point=p["int8_zero_point"],
            float_input=np.asarray(values[t["float_input"]], np.float32) if t["float_input"] >= 0 else None))
    return layers


def write_layer_file(layer: Layer, path: str | Path) -> Path:
    """Serialise ``layer`` in the driver's format (``driver.cc`` header comment)."""
    n, h, w, _ = layer.input.shape
    ho, wo = layer.out_hw
    header = struct.pack(
        "<20if3i", MAGIC, VERSION, OUT_TYPES[layer.out_type], n, h, w, layer.channels_in, layer.channels_out,
        int(layer.filter.shape[1]), int(layer.filter.shape[2]), layer.groups, layer.stride[0], layer.stride[1],
        layer.dilation[0], layer.dilation[1], 1 if layer.padding == "SAME" else 2, layer.pad_value,
        layer.activation, ho, wo, float(layer.int8_scale), int(layer.int8_zero_point),
        int(layer.float_input is not None), 0)
    parts = [header, np.ascontiguousarray(layer.input, "<i4").tobytes(),
             np.ascontiguousarray(layer.filter, "<i4").tobytes(),
             np.ascontiguousarray(layer.multiplier, "<f4").tobytes(), np.ascontiguousarray(layer.bias, "<f4").tobytes(),
             np.ascontiguousarray(layer.thresholds, "<i4").tobytes()]
    if layer.float_input is not None:
        parts.append(np.ascontiguousarray(layer.float_input, "<f4").tobytes())
    p = Path(path)
    p.write_bytes(b"".join(parts))
    return p
