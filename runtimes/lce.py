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

from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from runtimes.base import BaseRunner, ModelMeta
from runtimes.session import Engine, open_session
from runtimes.tflite import dequantize_output


class LceRunner(BaseRunner):
    """A .tflite model in LCE's interpreter (:func:`runtimes.session.open_session`, engine ``lce/<kernel>``).

    The LCE converter forces batch 1 and NHWC: run() transposes each image to (1, H, W, 3) and loops.
    """

    backend = "lce"

    def __init__(self, path: str | Path, threads: int = 1, kernel: str = "default", xnnpack: bool = True, **_):
        self.session = open_session(path, Engine("lce", kernel), threads=threads, xnnpack=xnnpack)
        super().__init__(path, threads, ModelMeta.from_sidecar(path))
        self.kernel = kernel
        self.xnnpack = xnnpack
        ins, outs = self.session.inputs, self.session.outputs
        if len(ins) != 1:
            raise ModelFileError(f"{path}: expected one image input, the model has {len(ins)}")
        shape = ins[0].shape
        if len(shape) != 4:
            raise ModelFileError(f"{path}: expected one 4-D image input, got shape {shape}")
        self.model_layout = self.meta.layout or ("NCHW" if shape[1] == 3 and shape[3] != 3 else "NHWC")
        self.input_shape = (1, shape[3], shape[1], shape[2]) if self.model_layout == "NHWC" else (1, *shape[1:])
        self.in_dtype = ins[0].dtype
        self.in_quant = ins[0].quantization
        self.out_quant = outs[0].quantization

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
        y = self.session._run([x])[0]
        if not np.issubdtype(y.dtype, np.floating):
            scale, zero = self.out_quant
            y = dequantize_output(y, {"quantization": (scale, zero)})
        return y
