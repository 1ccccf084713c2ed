"""onnxruntime runner for ``.onnx`` models (CPUExecutionProvider)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import ModelFileError
from runtimes.base import BaseRunner, ModelMeta
from runtimes.errors import RuntimeBackendError


def _dim(d) -> int:
    return d if isinstance(d, int) and d > 0 else -1  # symbolic / unknown dims -> -1


def check_onnx_file(path: str | Path) -> None:
    """``onnx.checker`` on the file before onnxruntime parses it; ModelFileError names what is wrong."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a core dependency
        return
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError, OSError, ...
        raise ModelFileError(f"{path} is not a readable ONNX model (corrupt or truncated?): "
                             f"{type(e).__name__}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - ValidationError and friends
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"{path} is not a valid ONNX model: {first[:300]}") from None


class OrtRunner(BaseRunner):
    """An ONNX model in an onnxruntime ``InferenceSession``.

    threads: ``intra_op_num_threads`` (inter-op 1, sequential execution). Thread-pool spinning is switched off
    (``session.intra_op.allow_spinning=0``) so idle worker threads do not steal CPU from other runners that
    the benchmark interleaves with this one. Metadata comes from ``metadata_props``.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 1, spinning: bool = False, **_):
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - onnxruntime is a core dependency
            raise RuntimeBackendError("onnxruntime is not installed: pip install onnxruntime") from e
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        check_onnx_file(path)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own pybind exception types
            raise ModelFileError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0]}") from e
        meta = ModelMeta.from_dict(dict(self.session.get_modelmeta().custom_metadata_map))
        super().__init__(path, threads, meta)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelFileError(f"{path}: expected one image input, the model has {len(inputs)} "
                                 f"({', '.join(i.name for i in inputs)})")
        inp = inputs[0]
        self.input_name = inp.name
        if inp.type != "tensor(float)":
            raise ModelFileError(f"{path}: input {inp.name!r} is {inp.type}, expected tensor(float) images")
        shape = [_dim(d) for d in inp.shape]
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
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> first model output (N, ...). Models with a fixed batch of 1 are looped."""
        x = self._to_model_layout(self._check(batch))
        if self.fixed_batch == 1 and len(x) != 1:
            return np.concatenate([self.run_one(x[i:i + 1]) for i in range(len(x))])
        return self.run_one(x)

    def run_one(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self.output_names[:1], {self.input_name: x})[0]
