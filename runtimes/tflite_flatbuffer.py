"""Read a ``.tflite`` flatbuffer without TensorFlow's interpreter: operator names, operators with their shapes and
options, output names. The one TFLite schema reader; ``runtimes.detect`` and ``export.audit`` use it.

The schema is TensorFlow's generated ``tensorflow/lite/python/schema_py_generated.py``, loaded by file path
(importing TensorFlow itself takes seconds). Without it (e.g. a Raspberry Pi with only the LCE runtime),
:func:`op_names` falls back to a byte search for the LCE custom-op names, and :func:`read_ops` refuses.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ModelFileError
from runtimes.tflite_verify import verify_tflite

FILE_IDENTIFIER = b"TFL3"  # bytes 4..8 of every .tflite file
LCE_BCONV = "LceBconv2d"
LCE_OP_NAMES = (LCE_BCONV, "LceQuantize", "LceDequantize", "LceBMaxPool2d")
FLOAT_CONV = "CONV_2D"
PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT", 6: "SIGMOID"}
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 9: "int8"}


@dataclass
class OpInfo:
    """One operator of the main subgraph, in execution order."""

    index: int
    name: str                              # builtin name (CONV_2D) or custom code (LceBconv2d)
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    output_types: list[str]
    weight_bytes: int = 0                  # bytes of the filter buffer (input 1) for conv ops
    options: dict = field(default_factory=dict)  # custom options (flexbuffer) or conv builtin options


@functools.lru_cache(maxsize=1)
def load_schema():
    """The generated TFLite flatbuffer schema module, or None when TensorFlow's schema file is unavailable."""
    try:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / "lite" / "python" / "schema_py_generated.py"
        if not path.is_file():
            return None
        mod_spec = importlib.util.spec_from_file_location("_burn_edge_tflite_schema", path)
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        return mod
    except Exception:  # noqa: BLE001 - any failure means "no schema"
        return None


def _need_schema():
    schema = load_schema()
    if schema is None:
        raise ModelFileError("reading TFLite operators needs the TFLite schema shipped with tensorflow "
                             "(install the [lce] extra)")
    return schema


def model_object(data: bytes):
    """The flatbuffer as the schema's mutable object tree (``ModelT``), for tools that edit a model (stage
    marks, cutting, per-layer extraction). Write it back with :func:`model_bytes`."""
    schema = _need_schema()
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))


def model_bytes(mt, size_hint: int = 1024) -> bytes:
    """A ``ModelT`` (see :func:`model_object`) serialised as a ``.tflite`` flatbuffer (identifier ``TFL3``)."""
    import flatbuffers

    b = flatbuffers.Builder(max(1024, size_hint))
    b.Finish(mt.Pack(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def check_identifier(data: bytes, what: str = "model") -> None:
    """Raise ModelFileError unless ``data`` carries the TFLite file identifier."""
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelFileError(f"{what} is not a TFLite flatbuffer (no 'TFL3' identifier)")


def _op_code_names(schema, model) -> list[str]:
    """Name of each operator code: the custom code (``LceBconv2d``) or the builtin name (``CONV_2D``)."""
    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        custom = oc.CustomCode()
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        names.append(custom.decode() if custom else builtin_names.get(code, f"BUILTIN_{code}"))
    return names


def op_names(data: bytes, what: str = "model") -> list[str]:
    """Operator-code names of a .tflite model (custom codes like ``LceBconv2d`` or builtin names like ``CONV_2D``).

    Without the schema: the LCE op names found by a byte search. Raises ModelFileError on a non-TFLite file.
    """
    check_identifier(data, what)
    schema = load_schema()
    if schema is None:
        return sorted(n for n in LCE_OP_NAMES if n.encode() in data)
    verify_tflite(data, what)  # bounds first: the generated reader trusts every offset
    try:
        return _op_code_names(schema, schema.Model.GetRootAsModel(data, 0))
    except Exception as e:  # noqa: BLE001 - a truncated flatbuffer raises anything from struct/IndexError
        raise ModelFileError(f"{what} is a corrupt TFLite flatbuffer: {e}") from e


def read_ops(data: bytes, what: str = "model") -> list[OpInfo]:
    """The main subgraph's operators with shapes, output types, conv weight sizes and options
    (LceBconv2d custom options via flexbuffers; CONV_2D builtin options). Needs the schema."""
    from flatbuffers import flexbuffers

    check_identifier(data, what)
    schema = _need_schema()
    verify_tflite(data, what)
    try:
        model = schema.Model.GetRootAs(data, 0)
        codes = _op_code_names(schema, model)
        g = model.Subgraphs(0)

        def tensor(i):
            return g.Tensors(i)

        def buffer_bytes(t) -> int:
            b = model.Buffers(t.Buffer())
            return int(b.Size()) if b.Offset() > 1 else int(b.DataLength())

        ops = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            name = codes[op.OpcodeIndex()]
            ins = [op.Inputs(j) for j in range(op.InputsLength())]
            outs = [op.Outputs(j) for j in range(op.OutputsLength())]
            info = OpInfo(i, name, [tensor(t).ShapeAsNumpy().tolist() if t >= 0 else [] for t in ins],
                          [tensor(t).ShapeAsNumpy().tolist() for t in outs],
                          [TENSOR_TYPES.get(tensor(t).Type(), str(tensor(t).Type())) for t in outs])
            if name in (LCE_BCONV, FLOAT_CONV) and len(ins) > 1:
                info.weight_bytes = buffer_bytes(tensor(ins[1]))
            if name == LCE_BCONV and op.CustomOptionsLength():
                info.options = dict(flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes()))
            elif name == FLOAT_CONV:
                o = schema.Conv2DOptions()
                table = op.BuiltinOptions()
                if table is not None:
                    o.Init(table.Bytes, table.Pos)
                    info.options = {"padding": o.Padding(), "stride_height": o.StrideH(), "stride_width": o.StrideW(),
                                    "fused_activation_function": o.FusedActivationFunction()}
            ops.append(info)
        return ops
    except Exception as e:  # noqa: BLE001 - flatbuffers raises assorted errors on garbage bytes
        raise ModelFileError(f"{what} is a corrupt TFLite flatbuffer ({type(e).__name__})") from None


def output_names(data: bytes) -> list[str]:
    """Names of the main subgraph's outputs, in the interpreter's output order.

    Uses the SignatureDef keys when the converter wrote them (they are the Keras output layer names,
    e.g. ``tap_03``), else the output tensors' names.
    """
    schema = _need_schema()
    verify_tflite(data)
    model = schema.Model.GetRootAs(data, 0)
    g = model.Subgraphs(0)
    outs = [g.Outputs(i) for i in range(g.OutputsLength())]
    by_tensor = {}
    for s in range(model.SignatureDefsLength()):
        sd = model.SignatureDefs(s)
        for j in range(sd.OutputsLength()):
            tm = sd.Outputs(j)
            by_tensor[tm.TensorIndex()] = tm.Name().decode()
    return [by_tensor.get(i) or g.Tensors(i).Name().decode() for i in outs]
