"""Plain TFLite runner (models without LCE custom ops): ``ai_edge_litert`` if installed, else ``tf.lite``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from runtimes.base import BaseRunner, ModelMeta
from runtimes.errors import RuntimeBackendError
from runtimes.tflite_verify import verify_tflite_file


def _interpreter_module():
    """(Interpreter class, OpResolverType enum or None, name) of the first available TFLite Python runtime."""
    try:
        from ai_edge_litert import interpreter as litert  # type: ignore[import-not-found]

        return litert.Interpreter, getattr(litert, "OpResolverType", None), "ai_edge_litert"
    except ImportError:
        pass
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as e:
        raise RuntimeBackendError("TFLite models need tensorflow or ai-edge-litert: "
                                  "pip install 'burn-edge[lce]' (or ai-edge-litert)") from e
    return tf.lite.Interpreter, tf.lite.experimental.OpResolverType, "tensorflow"


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """float -> the input tensor's dtype (int8/uint8 via its scale/zero point; float passes through)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


class TFLiteRunner(BaseRunner):
    """A .tflite model in the stock TFLite interpreter.

    xnnpack=True (default) uses the builtin op resolver, which applies the XNNPACK delegate to float ops;
    xnnpack=False uses ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``. The model input is NHWC with batch 1: run()
    transposes and loops over the batch. Metadata comes from the ``<model>.meta.json`` sidecar.
    """

    backend = "tflite"

    def __init__(self, path: str | Path, threads: int = 1, xnnpack: bool = True, **_):
        interpreter_cls, resolver_type, self.runtime = _interpreter_module()
        kw = {}
        if not xnnpack and resolver_type is not None:
            kw["experimental_op_resolver_type"] = resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        data = verify_tflite_file(path)  # never hand unverified bytes to the native interpreter
        try:
            self.interpreter = interpreter_cls(model_content=data, num_threads=int(threads), **kw)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            hint = " (it uses LCE custom ops: load it with backend='lce')" if "Lce" in str(e) else ""
            raise ModelFileError(f"TFLite cannot load {path}: {msg}{hint}") from e
        super().__init__(path, threads, ModelMeta.from_sidecar(path))
        self.xnnpack = xnnpack
        ins = self.interpreter.get_input_details()
        if len(ins) != 1:
            raise ModelFileError(f"{path}: expected one image input, the model has {len(ins)}")
        self.in_detail = ins[0]
        self.out_detail = self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self.in_detail["shape"])
        if len(shape) != 4:
            raise ModelFileError(f"{path}: expected one 4-D image input, got shape {shape}")
        self.model_layout = self.meta.layout or ("NCHW" if shape[1] == 3 and shape[3] != 3 else "NHWC")
        if self.model_layout == "NHWC":
            self.input_shape = (1, shape[3], shape[1], shape[2])
        else:
            self.input_shape = (1, *shape[1:])
        if shape[0] != 1:
            self.interpreter.resize_tensor_input(self.in_detail["index"], [1, *shape[1:]])
            self.interpreter.allocate_tensors()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, ...) float32; one invoke per image."""
        x = self._to_model_layout(self._check(batch))
        return np.concatenate([self.run_one(x[i:i + 1]) for i in range(len(x))])

    def run_one(self, x: np.ndarray) -> np.ndarray:
        """One image already in the model layout, batch 1 -> output with batch 1."""
        self.interpreter.set_tensor(self.in_detail["index"], quantize_input(x, self.in_detail))
        self.interpreter.invoke()
        return dequantize_output(self.interpreter.get_tensor(self.out_detail["index"]), self.out_detail)
