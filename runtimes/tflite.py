"""Plain TFLite runner (models without LCE custom ops): ``ai_edge_litert`` if installed, else ``tf.lite``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from runtimes.base import BaseRunner, ModelMeta
from runtimes.session import Engine, open_session


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
    """A .tflite model in the stock TFLite interpreter (:func:`runtimes.session.open_session`, engine
    ``tflite``: ``ai_edge_litert`` if installed, else ``tf.lite``).

    xnnpack=True (default) uses the builtin op resolver, which applies the XNNPACK delegate to float ops;
    xnnpack=False uses ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``. The model input is NHWC with batch 1: run()
    transposes and loops over the batch. Metadata comes from the ``<model>.meta.json`` sidecar.
    """

    backend = "tflite"

    def __init__(self, path: str | Path, threads: int = 1, xnnpack: bool = True, **_):
        self.session = open_session(path, Engine("tflite"), threads=threads, xnnpack=xnnpack)
        super().__init__(path, threads, ModelMeta.from_sidecar(path))
        self.xnnpack = xnnpack
        ins = self.session.inputs
        if len(ins) != 1:
            raise ModelFileError(f"{path}: expected one image input, the model has {len(ins)}")
        self.in_info, self.out_info = ins[0], self.session.outputs[0]
        shape = self.in_info.shape
        if len(shape) != 4:
            raise ModelFileError(f"{path}: expected one 4-D image input, got shape {shape}")
        self.model_layout = self.meta.layout or ("NCHW" if shape[1] == 3 and shape[3] != 3 else "NHWC")
        if self.model_layout == "NHWC":
            self.input_shape = (1, shape[3], shape[1], shape[2])
        else:
            self.input_shape = (1, *shape[1:])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, ...) float32; one invoke per image."""
        x = self._to_model_layout(self._check(batch))
        return np.concatenate([self.run_one(x[i:i + 1]) for i in range(len(x))])

    def run_one(self, x: np.ndarray) -> np.ndarray:
        """One image already in the model layout, batch 1 -> output with batch 1."""
        detail = {"dtype": self.in_info.dtype, "quantization": self.in_info.quantization or (0.0, 0)}
        y = self.session._run([quantize_input(x, detail)])[0]
        return dequantize_output(y, {"quantization": self.out_info.quantization or (0.0, 0)})
