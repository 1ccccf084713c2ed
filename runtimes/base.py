"""The runner interface shared by every backend, reading model metadata, and input preprocessing.

A *runner* wraps one loaded model on one backend with fixed options (threads, kernel). Every runner takes the
same input, whatever the model's own layout::

    batch: float32 array (N, 3, H, W), already normalised (see :func:`preprocess`)
    runner.run(batch) -> float32 array (N, ...)  # e.g. (N, num_classes) logits

TFLite and LCE models are NHWC with batch size 1 (the LCE converter forces batch 1), so their runners transpose
each image to (1, H, W, 3) and loop over the batch. ONNX models keep NCHW.

Metadata keys and the sidecar file name: :mod:`runtimes.format` (the contract ``export/`` writes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from common.errors import ModelFileError
from runtimes.format import (
    META_ARCH,
    META_INPUT_SIZE,
    META_LAYOUT,
    META_MEAN,
    META_OUTPUT,
    META_PREFIX,
    META_STD,
    decode_value,
    read_sidecar,
    validate_metadata,
)

BACKENDS = ("onnxruntime", "tflite", "lce")


def _input_hw(value: Any) -> tuple[int, int] | None:
    """[H, W], [3, H, W], [H, W, 3], [1, 3, H, W], [1, H, W, 3] or an int S -> (H, W)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value), int(value)
    dims = [int(v) for v in value]
    if len(dims) == 4:
        dims = dims[1:]
    if len(dims) == 3:
        dims = dims[1:] if dims[0] in (1, 3) and dims[2] not in (1, 3) else dims[:2]
    if len(dims) != 2:
        raise ModelFileError(f"metadata {META_INPUT_SIZE}={value!r} is not [H, W]")
    return dims[0], dims[1]


@dataclass
class ModelMeta:
    """Preprocessing and description read from a model's metadata (all fields optional).

    input_hw: (H, W) the model expects; mean/std: 3 floats each on the [0, 1] scale; layout: the model's own
    input layout ("NCHW"/"NHWC"); raw: every ``burn_edge.*`` key as stored (strings).
    """

    input_hw: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str | None = None
    output: str | None = None
    arch: Any = None
    raw: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        """Build from a ``{key: value}`` map (values JSON strings or already-decoded objects), validated first
        (:func:`runtimes.format.validate_metadata`: ModelFileError, one line, for unusable values)."""
        validate_metadata(d, "model metadata")
        raw = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in d.items() if k.startswith(META_PREFIX)}
        mean, std = decode_value(d.get(META_MEAN)), decode_value(d.get(META_STD))
        layout = d.get(META_LAYOUT)
        return cls(
            input_hw=_input_hw(decode_value(d.get(META_INPUT_SIZE))),
            mean=tuple(float(v) for v in mean) if mean is not None else None,
            std=tuple(float(v) for v in std) if std is not None else None,
            layout=str(layout).upper() if layout else None,
            output=d.get(META_OUTPUT),
            arch=decode_value(d.get(META_ARCH)),
            raw=raw,
        )

    @classmethod
    def from_sidecar(cls, model_path: str | Path) -> ModelMeta:
        """Read the sidecar (:func:`runtimes.format.sidecar_path`) of a .tflite model; empty metadata if none."""
        d = read_sidecar(model_path)
        return cls() if d is None else cls.from_dict(d)


def preprocess(images: np.ndarray, meta: ModelMeta | None = None, *, layout: str | None = None,
               mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> np.ndarray:
    """Images -> the normalised float32 NCHW batch every runner takes.

    images: uint8 in [0, 255] or float in [0, 1]; shape (N, H, W, 3), (N, 3, H, W), (H, W, 3) or (3, H, W).
    ``layout`` ("NHWC"/"NCHW") settles ambiguous shapes; otherwise a trailing 3 means channels-last.
    mean/std (3 floats on the [0, 1] scale) default to ``meta``'s, then to 0 / 1 (no normalisation).
    Returns float32 (N, 3, H, W) = (x/255 - mean) / std for uint8 input, (x - mean) / std for float input.
    Grayscale (N, H, W) / (N, H, W, 1) input is repeated to 3 channels.
    """
    x = np.asarray(images)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype(np.float32) / np.float32(scale)
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] not in (1, 3) and x.shape[0] not in (1, 3)):
        x = x[..., None]  # (H, W) or (N, H, W) grayscale -> channels-last
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"preprocess expects (N, H, W, C) or (N, C, H, W) images, got shape {images.shape}")
    lay = (layout or "").upper()
    if not lay:
        lay = "NHWC" if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3) else "NCHW"
    if lay == "NHWC":
        x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    m = mean if mean is not None else (meta.mean if meta and meta.mean else (0.0, 0.0, 0.0))
    s = std if std is not None else (meta.std if meta and meta.std else (1.0, 1.0, 1.0))
    m = np.asarray(m, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(s, np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


@runtime_checkable
class Runner(Protocol):
    """One model loaded on one backend. See the module docstring for the batch contract."""

    path: Path
    backend: str  # one of BACKENDS
    kernel: str  # LCE kernel ("default"/"indirect"/"reference"), "-" for other backends
    threads: int
    meta: ModelMeta
    input_shape: tuple[int, ...]  # the NCHW shape run() expects per image, (1, 3, H, W)
    model_layout: str  # layout of the model's own input tensor, "NCHW" or "NHWC"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, ...) float32 model output."""
        ...


class BaseRunner:
    """Shared plumbing: input checks, NCHW->NHWC conversion, batch loop."""

    backend = "?"
    kernel = "-"

    def __init__(self, path: str | Path, threads: int, meta: ModelMeta):
        self.path = Path(path)
        self.threads = int(threads)
        self.meta = meta
        self.input_shape: tuple[int, ...] = ()
        self.model_layout = "NCHW"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path.name!r}, backend={self.backend!r}, kernel={self.kernel!r}, "
                f"threads={self.threads}, input={self.input_shape})")

    @property
    def name(self) -> str:
        """Human label, e.g. ``model.tflite [lce/indirect, 1 thr]``."""
        k = f"/{self.kernel}" if self.kernel != "-" else ""
        return f"{self.path.name} [{self.backend}{k}, {self.threads} thr]"

    def preprocess(self, images: np.ndarray, **kw) -> np.ndarray:
        """:func:`preprocess` with this model's metadata mean/std."""
        return preprocess(images, self.meta, **kw)

    def example_input(self, batch: int = 1, seed: int = 0) -> np.ndarray:
        """A random standard-normal (batch, 3, H, W) float32 input for timing."""
        return np.random.default_rng(seed).standard_normal((batch, *self.input_shape[1:])).astype(np.float32)

    def _check(self, batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        want = tuple(self.input_shape[1:])
        if x.ndim != 4 or (want and all(d > 0 for d in want) and tuple(x.shape[1:]) != want):
            raise ValueError(f"{self.name} expects an NCHW float batch (N, {', '.join(map(str, want))}), "
                             f"got shape {tuple(np.shape(batch))}")
        return x

    def _to_model_layout(self, x: np.ndarray) -> np.ndarray:
        if self.model_layout == "NHWC":
            x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        return np.ascontiguousarray(x)
