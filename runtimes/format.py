"""The model-file contract between ``export/`` (writes) and ``runtimes/`` (reads): metadata keys, sidecar
file names and LCE kernel names. The one place these facts are written; export imports them from here.

Metadata: ONNX stores it in ``ModelProto.metadata_props``, a ``.tflite`` model in a JSON sidecar (see
:func:`sidecar_path`). Values are strings; lists and objects are JSON-encoded.

=============================  ==========================================================================
``burn_edge.input_size``       ``"224"`` (square) or JSON ``[H, W]`` (``[3, H, W]``, ``[1, 3, H, W]``,
                               ``[H, W, 3]`` are read too)
``burn_edge.mean``             JSON list of 3 floats, per RGB channel, on the [0, 1] scale (torchvision style)
``burn_edge.std``              JSON list of 3 floats, same scale
``burn_edge.layout``           ``"NCHW"`` (ONNX) or ``"NHWC"`` (TFLite): the layout of the model's input tensor
``burn_edge.output``           ``"logits"``, ``"features"`` or a stage name (``"blocks.3"``)
``burn_edge.arch``             JSON of the ReActNet config (``ReActNetConfig.to_dict()``)
``burn_edge.source_sha256``    sha256 of the checkpoint file the model was exported from ("" if none)
``burn_edge.kind``             ``"onnx"``, ``"lce"`` or ``"tflite-float"``
=============================  ==========================================================================

Every exported model takes upright images: the LCE port's H/W flip (PyTorch padding geometry) is inside the
model, so no key asks a runtime to flip its input.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.errors import ModelFileError

META_PREFIX = "burn_edge."
META_INPUT_SIZE = "burn_edge.input_size"
META_MEAN = "burn_edge.mean"
META_STD = "burn_edge.std"
META_LAYOUT = "burn_edge.layout"
META_OUTPUT = "burn_edge.output"
META_ARCH = "burn_edge.arch"
META_SOURCE = "burn_edge.source_sha256"
META_KIND = "burn_edge.kind"
META_KEYS = (META_INPUT_SIZE, META_MEAN, META_STD, META_LAYOUT, META_OUTPUT, META_ARCH, META_SOURCE, META_KIND)

SIDECAR_SUFFIX = ".meta.json"   # metadata of a .tflite model
AUDIT_SUFFIX = ".audit.json"    # converter audit report (export.audit)

# LCE binary-convolution kernels, by the name every CLI and report uses. "default": the optimised kernel
# (aarch64 assembly on ARM, portable C++ elsewhere); "indirect": indirect BGEMM; "reference": the slow,
# exact reference implementation. Flags for the Python interpreter and for lce_benchmark_model:
LCE_KERNELS = ("default", "indirect", "reference")
LCE_INTERPRETER_FLAGS = {
    "default": {"use_reference_bconv": False, "use_indirect_bgemm": False},
    "indirect": {"use_reference_bconv": False, "use_indirect_bgemm": True},
    "reference": {"use_reference_bconv": True, "use_indirect_bgemm": False},
}
LCE_BENCHMARK_FLAGS = {"default": [], "indirect": ["--use_indirect_bgemm=true"],
                       "reference": ["--use_reference_bconv=true"]}


def sidecar_path(model_path: str | Path, suffix: str = SIDECAR_SUFFIX) -> Path:
    """The sidecar of a model file: ``m.tflite`` -> ``m.meta.json``; any other name gets ``suffix`` appended
    (``m.bin`` -> ``m.bin.meta.json``, ``m`` -> ``m.meta.json``), so two models in one folder with different
    suffixes never share a sidecar. ``suffix=AUDIT_SUFFIX`` names the audit report the same way."""
    p = Path(model_path)
    return p.with_suffix(suffix) if p.suffix == ".tflite" else p.with_name(p.name + suffix)


def read_sidecar(model_path: str | Path) -> dict | None:
    """The ``burn_edge.*`` metadata sidecar of a model as stored (string values), or None when there is none.

    Raises ModelFileError when the sidecar exists but is not a JSON object.
    """
    p = sidecar_path(model_path)
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"metadata sidecar {p} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ModelFileError(f"metadata sidecar {p} must hold a JSON object, got {type(d).__name__}")
    return d


def decode_value(value):
    """A metadata value with JSON strings decoded (``"[0.5, 0.5, 0.5]"`` -> list); other text is kept."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
