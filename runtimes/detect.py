"""Pick a backend from a model file: ``.onnx`` -> onnxruntime; ``.tflite`` with ``Lce*`` custom ops -> lce,
other ``.tflite`` -> tflite.

The TFLite operator codes are read from the flatbuffer with TensorFlow's generated schema
(``tensorflow/lite/python/schema_py_generated.py``, loaded by file path so TensorFlow itself is not imported);
when that file or the ``flatbuffers`` package is missing, a byte search for the LCE custom-op names is used.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from common.errors import ModelFileError

LCE_OP_NAMES = (b"LceBconv2d", b"LceQuantize", b"LceDequantize", b"LceBMaxPool2d")
SUFFIX_BACKEND = {".onnx": "onnxruntime", ".tflite": None}  # None: decided by the operator codes


@functools.lru_cache(maxsize=1)
def _tflite_schema():
    """The generated TFLite flatbuffer schema module, or None when unavailable."""
    try:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / "lite" / "python" / "schema_py_generated.py"
        if not path.exists():
            return None
        mod_spec = importlib.util.spec_from_file_location("_burn_edge_tflite_schema", path)
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        return mod
    except Exception:  # noqa: BLE001 - any failure means "use the byte-search fallback"
        return None


def tflite_op_names(path: str | Path) -> list[str]:
    """Operator names used by a .tflite model: custom codes (``LceBconv2d``) or builtin names (``CONV_2D``).

    Raises ModelFileError when the file is not a TFLite flatbuffer.
    """
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier)")
    schema = _tflite_schema()
    if schema is None:
        return sorted({n.decode() for n in LCE_OP_NAMES if n in data})
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        names = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            custom = oc.CustomCode()
            if custom:
                names.append(custom.decode())
            else:
                code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
                names.append(builtin_names.get(code, str(code)))
        return names
    except Exception as e:  # noqa: BLE001 - a truncated flatbuffer raises anything from struct/IndexError
        raise ModelFileError(f"{path} is a corrupt TFLite flatbuffer: {e}") from e


def is_lce_model(path: str | Path) -> bool:
    """True when the .tflite model uses any ``Lce*`` custom op."""
    return any(n.startswith("Lce") for n in tflite_op_names(path))


def detect_backend(path: str | Path) -> str:
    """``"onnxruntime"``, ``"tflite"`` or ``"lce"`` for a model file (ModelFileError if missing/unknown)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file not found: {p}")
    suffix = p.suffix.lower()
    if suffix not in SUFFIX_BACKEND:
        raise ModelFileError(f"{p}: unknown model type {suffix!r}; expected .onnx or .tflite")
    if suffix == ".onnx":
        return "onnxruntime"
    return "lce" if is_lce_model(p) else "tflite"
