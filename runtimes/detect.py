"""Pick a backend from a model file: ``.onnx`` -> onnxruntime; ``.tflite`` with ``Lce*`` custom ops -> lce,
other ``.tflite`` -> tflite. The operators are read by :mod:`runtimes.tflite_flatbuffer`.
"""

from __future__ import annotations

from pathlib import Path

from common.errors import ModelFileError
from runtimes.tflite_flatbuffer import op_names

SUFFIX_BACKEND = {".onnx": "onnxruntime", ".tflite": None}  # None: decided by the operator codes


def tflite_op_names(path: str | Path) -> list[str]:
    """Operator names used by a .tflite model: custom codes (``LceBconv2d``) or builtin names (``CONV_2D``).

    Raises ModelFileError when the file is not a TFLite flatbuffer.
    """
    return op_names(Path(path).read_bytes(), str(path))


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
