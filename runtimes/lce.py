"""Larq Compute Engine runner for .tflite models with ``Lce*`` custom ops.

Kernels for ``LceBconv2d`` (``kernel=``):
- ``"default"``: LCE's optimised BGEMM (ruy). On aarch64 it uses NEON; on x86 the pip wheel runs ruy's portable
  C++ path, which is *slower* than the reference kernel there.
- ``"indirect"``: the indirect BGEMM (``use_indirect_bgemm``); aarch64 assembly on ARM, a portable C++ kernel
  elsewhere. Single-threaded inside the bconv. Fastest on x86 hosts.
- ``"reference"``: the plain reference implementation (``use_reference_bconv``).
Float ops use TFLite's builtin kernels, with XNNPACK when ``xnnpack=True`` (default, as LCE's published
benchmarks).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from runtimes.base import BaseRunner, ModelMeta
from runtimes.errors import RuntimeBackendError
from runtimes.format import LCE_INTERPRETER_FLAGS, LCE_KERNELS
from runtimes.tflite import dequantize_output
from runtimes.tflite_verify import verify_tflite_file


def _lce_interpreter_cls():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from larq_compute_engine.tflite.python.interpreter import Interpreter
    except ImportError as e:
        raise RuntimeBackendError("LCE models need larq-compute-engine: pip install 'burn-edge[lce]'") from e
    return Interpreter


def _as_np_dtype(t) -> np.dtype:
    try:
        return np.dtype(t)
    except TypeError:
        return np.dtype(getattr(t, "as_numpy_dtype", np.float32))


class LceRunner(BaseRunner):
    """A .tflite model in ``larq_compute_engine.tflite.python.interpreter.Interpreter``.

    The LCE converter forces batch 1 and NHWC: run() transposes each image to (1, H, W, 3) and loops.
    """

    backend = "lce"

    def __init__(self, path: str | Path, threads: int = 1, kernel: str = "default", xnnpack: bool = True, **_):
        if kernel not in LCE_KERNELS:
            raise RuntimeBackendError(f"unknown LCE kernel {kernel!r}; choose one of {', '.join(LCE_KERNELS)}")
        interpreter_cls = _lce_interpreter_cls()
        data = verify_tflite_file(path)  # never hand unverified bytes to the native interpreter
        try:
            self.interpreter = interpreter_cls(data, num_threads=int(threads), use_xnnpack=bool(xnnpack),
                                               **LCE_INTERPRETER_FLAGS[kernel])
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelFileError(f"LCE cannot load {path}: {str(e).splitlines()[0] if str(e) else e!r}") from e
        super().__init__(path, threads, ModelMeta.from_sidecar(path))
        self.kernel = kernel
        self.xnnpack = xnnpack
        self._wrapper = self.interpreter.interpreter  # the pybind LiteInterpreter: predict(list) -> list
        if len(self.interpreter.input_shapes) != 1:
            raise ModelFileError(f"{path}: expected one image input, the model has "
                                 f"{len(self.interpreter.input_shapes)}")
        shape = tuple(int(d) for d in self.interpreter.input_shapes[0])
        if len(shape) != 4:
            raise ModelFileError(f"{path}: expected one 4-D image input, got shape {shape}")
        self.model_layout = self.meta.layout or ("NCHW" if shape[1] == 3 and shape[3] != 3 else "NHWC")
        self.input_shape = (1, shape[3], shape[1], shape[2]) if self.model_layout == "NHWC" else (1, *shape[1:])
        self.in_dtype = _as_np_dtype(self.interpreter.input_types[0])
        self.in_quant = (self.interpreter.input_scales[0], self.interpreter.input_zero_points[0])
        self.out_quant = (self.interpreter.output_scales[0], self.interpreter.output_zero_points[0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, ...) float32; one invoke per image."""
        x = self._to_model_layout(self._check(batch))
        return np.concatenate([self.run_one(x[i:i + 1]) for i in range(len(x))])

    def run_one(self, x: np.ndarray) -> np.ndarray:
        """One image already in the model layout, batch 1 -> output with batch 1."""
        if not np.issubdtype(self.in_dtype, np.floating):
            scale, zero = self.in_quant
            info = np.iinfo(self.in_dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.in_dtype)
        y = self._wrapper.predict([x])[0]
        if not np.issubdtype(y.dtype, np.floating):
            scale, zero = self.out_quant
            y = dequantize_output(y, {"quantization": (scale, zero)})
        return y
