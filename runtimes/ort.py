"""onnxruntime runner for ``.onnx`` models (CPUExecutionProvider)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from runtimes.base import BaseRunner, ModelMeta
from runtimes.session import Engine, check_onnx, open_session


def check_onnx_file(path: str | Path) -> None:
    """``onnx.checker`` on the file before onnxruntime parses it; ModelFileError names what is wrong."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}") from None
    check_onnx(data, str(path))


class OrtRunner(BaseRunner):
    """An ONNX model in an onnxruntime session (:func:`runtimes.session.open_session`).

    threads: ``intra_op_num_threads`` (inter-op 1, sequential execution). Thread-pool spinning is switched off
    (``session.intra_op.allow_spinning=0``) so idle worker threads do not steal CPU from other runners that
    the benchmark interleaves with this one. Metadata comes from ``metadata_props``.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 1, spinning: bool = False, **_):
        self.session = open_session(path, Engine("onnxruntime"), threads=threads, spinning=spinning)
        meta = ModelMeta.from_dict(self.session.metadata)
        super().__init__(path, threads, meta)
        inputs = self.session.inputs
        if len(inputs) != 1:
            raise ModelFileError(f"{path}: expected one image input, the model has {len(inputs)} "
                                 f"({', '.join(i.name for i in inputs)})")
        inp = inputs[0]
        self.input_name = inp.name
        if inp.dtype != np.float32:
            raise ModelFileError(f"{path}: input {inp.name!r} is tensor({inp.dtype}), expected tensor(float) images")
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelFileError(f"{path}: expected one 4-D image input, got {inp.name} with shape {inp.shape}")
        self.model_layout = meta.layout or ("NHWC" if shape[3] == 3 and shape[1] != 3 else "NCHW")
        if self.model_layout not in ("NCHW", "NHWC"):
            raise ModelFileError(f"{path}: metadata layout {self.model_layout!r} is neither NCHW nor NHWC")
        n, c, h, w = shape if self.model_layout == "NCHW" else (shape[0], shape[3], shape[1], shape[2])
        if meta.input_hw and (h < 0 or w < 0):
            h, w = meta.input_hw
        if h <= 0 or w <= 0 or c not in (-1, 1, 3):
            raise ModelFileError(f"{path}: input {inp.name!r} has shape {inp.shape} ({self.model_layout}): "
                                 "need 1 or 3 channels and a fixed height and width (or burn_edge.input_size "
                                 "metadata)")
        self.fixed_batch = n if n > 0 else None
        self.input_shape = (1, c if c > 0 else 3, h, w)
        self.output_names = self.session.output_names

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> first model output (N, ...). Models with a fixed batch of 1 are looped."""
        x = self._to_model_layout(self._check(batch))
        if self.fixed_batch == 1 and len(x) != 1:
            return np.concatenate([self.run_one(x[i:i + 1]) for i in range(len(x))])
        return self.run_one(x)

    def run_one(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([x])[self.output_names[0]]
