"""One small interface over the inference runtimes burn-edge exports to.

    import runtimes
    r = runtimes.load("model.tflite", threads=1, kernel="indirect")   # backend picked from the file
    logits = r.run(r.preprocess(images_uint8))                         # (N, 3, H, W) float32 -> (N, K)

Backends (``RUNNER_CLASSES``): ``onnxruntime`` (.onnx), ``tflite`` (.tflite without LCE ops; ``ai_edge_litert`` or
``tf.lite``) and ``lce`` (.tflite with ``Lce*`` custom ops). Latency benchmarks: ``python -m runtimes.bench``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from common.errors import ModelFileError
from runtimes.base import BACKENDS, BaseRunner, ModelMeta, Runner, preprocess
from runtimes.detect import detect_backend, is_lce_model, tflite_op_names
from runtimes.errors import RuntimeBackendError
from runtimes.format import LCE_KERNELS, META_KEYS

# backend name -> "module:class" (imported lazily: tensorflow takes seconds to import)
RUNNER_CLASSES: dict[str, str] = {
    "onnxruntime": "runtimes.ort:OrtRunner",
    "tflite": "runtimes.tflite:TFLiteRunner",
    "lce": "runtimes.lce:LceRunner",
}
BACKEND_ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "tf": "tflite", "tfl": "tflite", "larq": "lce"}


def runner_class(backend: str) -> type:
    """The runner class registered for a backend name (aliases: ort, onnx, tf, larq)."""
    name = BACKEND_ALIASES.get(backend, backend)
    if name not in RUNNER_CLASSES:
        raise RuntimeBackendError(f"unknown backend {backend!r}; choose one of {', '.join(RUNNER_CLASSES)}")
    module, cls = RUNNER_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load(path: str | Path, backend: str | None = None, threads: int = 1, **opts) -> BaseRunner:
    """Load a model and return a runner with ``run((N, 3, H, W) float32) -> (N, ...) float32``.

    backend: None picks from the file (see :func:`runtimes.detect.detect_backend`), or one of ``RUNNER_CLASSES``.
    threads: intra-op threads (>= 1). opts: backend options, e.g. ``kernel="indirect"`` (lce),
    ``xnnpack=False`` (tflite/lce), ``spinning=True`` (onnxruntime). Raises ModelFileError for a missing,
    unknown or corrupt file and RuntimeBackendError for a bad backend/option.
    """
    if int(threads) < 1:
        raise RuntimeBackendError(f"threads must be >= 1, got {threads}")
    detected = detect_backend(path)
    name = BACKEND_ALIASES.get(backend, backend) if backend else detected
    if name == "lce" and Path(path).suffix.lower() != ".tflite":
        raise ModelFileError(f"backend 'lce' needs a .tflite model, got {path}")
    if name == "tflite" and detected == "lce":
        raise RuntimeBackendError(f"{path} uses LCE custom ops, which stock TFLite cannot run; use backend='lce'")
    if opts.get("kernel") not in (None, "-", "default") and name != "lce":
        raise RuntimeBackendError(f"kernel={opts['kernel']!r} applies to LCE models only ({path} runs on {name})")
    if name != "lce":
        opts.pop("kernel", None)
    return runner_class(name)(path, threads=threads, **opts)


__all__ = ["BACKENDS", "LCE_KERNELS", "META_KEYS", "RUNNER_CLASSES", "BaseRunner", "ModelFileError", "ModelMeta",
           "Runner", "RuntimeBackendError", "detect_backend", "is_lce_model", "load", "preprocess", "runner_class",
           "tflite_op_names"]
