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
``burn_edge.model_sha256``     sidecars only: sha256 of the model file the sidecar describes (the set binding)
=============================  ==========================================================================

A ``.tflite`` model, its ``.meta.json`` and its ``.audit.json`` are one artefact set (written by
:class:`common.files.ArtefactSet`, model renamed last). The reader's rule (:func:`read_sidecar`): a sidecar
that names a ``model_sha256`` describes exactly the model file with that hash; any other model beside it (an
export interrupted between its renames, a model copied over by hand) is refused with ModelFileError instead of
being read with the wrong metadata. Sidecars from before the binding (no ``model_sha256``) are read as they are.

Every value is validated where it is read (:func:`validate_metadata`): finite numbers, 3 per-channel means,
positive stds, bounded sizes; a hostile sidecar gives one ModelFileError, never a traceback.

Every exported model takes upright images: the LCE port's H/W flip (PyTorch padding geometry) is inside the
model, so no key asks a runtime to flip its input.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from common.errors import ModelFileError
from common.files import sha256_file

META_PREFIX = "burn_edge."
META_INPUT_SIZE = "burn_edge.input_size"
META_MEAN = "burn_edge.mean"
META_STD = "burn_edge.std"
META_LAYOUT = "burn_edge.layout"
META_OUTPUT = "burn_edge.output"
META_ARCH = "burn_edge.arch"
META_SOURCE = "burn_edge.source_sha256"
META_KIND = "burn_edge.kind"
META_MODEL_SHA256 = "burn_edge.model_sha256"
META_KEYS = (META_INPUT_SIZE, META_MEAN, META_STD, META_LAYOUT, META_OUTPUT, META_ARCH, META_SOURCE, META_KIND,
             META_MODEL_SHA256)
AUDIT_MODEL_SHA256 = "model_sha256"  # the same binding inside a .audit.json
MAX_SIDE = 1 << 16   # largest input height/width a metadata entry may state

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


def read_sidecar(model_path: str | Path, *, check_binding: bool = True) -> dict | None:
    """The ``burn_edge.*`` metadata sidecar of a model as stored (string values), or None when there is none.

    Raises ModelFileError when the sidecar exists but is not a JSON object, holds an invalid value
    (:func:`validate_metadata`), or -- ``check_binding`` -- names a ``model_sha256`` other than the model's.
    """
    p = sidecar_path(model_path)
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(f"metadata sidecar {p} is not valid JSON: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(d, dict):
        raise ModelFileError(f"metadata sidecar {p} must hold a JSON object, got {type(d).__name__}")
    validate_metadata(d, f"metadata sidecar {p}")
    if check_binding:
        check_model_binding(model_path, d.get(META_MODEL_SHA256), str(p))
    return d


def check_model_binding(model_path: str | Path, want: str | None, what: str) -> None:
    """ModelFileError when ``want`` (a sidecar's model sha256) is set and the model file's sha256 differs."""
    model_path = Path(model_path)
    if not want or not model_path.is_file():
        return
    try:
        got = sha256_file(model_path)
    except OSError as e:
        raise ModelFileError(f"cannot read model {model_path}: {e.strerror or e}") from None
    if got != want:
        raise ModelFileError(f"{what} describes another model (sha256 {want[:12]}..., {model_path.name} is "
                             f"{got[:12]}...): the model and its sidecars come from different exports (an "
                             "interrupted export or a hand-copied file); export the model again")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _side(v) -> bool:
    return _finite(v) and float(v).is_integer() and 1 <= v <= MAX_SIDE


def validate_metadata(d: dict, what: str = "metadata") -> None:
    """ModelFileError (one line) unless every ``burn_edge.*`` value of ``d`` (strings or decoded) is usable:
    input_size S or a list of 2-4 sizes in [1, MAX_SIDE]; mean 3 finite floats; std 3 finite floats > 0;
    layout NCHW/NHWC; output, kind and source_sha256 strings; arch a JSON object of finite numbers, strings and
    booleans; model_sha256 64 hex digits. The one metadata check every reader (sidecar or ONNX props) applies."""
    def bad(key, why):
        raise ModelFileError(f"{what}: {key} is invalid ({why})")

    for key, raw in d.items():
        if not isinstance(key, str) or not key.startswith(META_PREFIX):
            continue
        v = decode_value(raw)
        if key == META_INPUT_SIZE:
            ok = _side(v) or (isinstance(v, list) and 2 <= len(v) <= 4 and all(_side(x) for x in v))
            if not ok:
                bad(key, f"{str(raw)[:60]!r} is not a size S or [H, W] with sides in 1..{MAX_SIDE}")
        elif key in (META_MEAN, META_STD):
            if not (isinstance(v, list) and len(v) == 3 and all(_finite(x) for x in v)):
                bad(key, f"{str(raw)[:60]!r} is not 3 finite numbers")
            if key == META_STD and not all(x > 0 for x in v):
                bad(key, f"{v} holds a std <= 0")
        elif key == META_LAYOUT:
            if not (isinstance(raw, str) and raw.upper() in ("NCHW", "NHWC")):
                bad(key, f"{str(raw)[:60]!r} is not NCHW or NHWC")
        elif key in (META_OUTPUT, META_KIND, META_SOURCE):
            if not isinstance(raw, str) or len(raw) > 256:
                bad(key, f"{str(raw)[:60]!r} is not a short string")
        elif key == META_MODEL_SHA256:
            if not (isinstance(raw, str) and re.fullmatch(r"[0-9a-f]{64}", raw)):
                bad(key, f"{str(raw)[:60]!r} is not a sha256 hex digest")
        elif key == META_ARCH:
            if not isinstance(v, dict):
                bad(key, f"{str(raw)[:60]!r} is not a JSON object")
            for k, x in v.items():
                if isinstance(x, bool) or isinstance(x, str) or _finite(x):
                    continue
                bad(key, f"field {str(k)[:30]!r} is {str(x)[:30]!r}, not a finite number, string or boolean")


def decode_value(value):
    """A metadata value with JSON strings decoded (``"[0.5, 0.5, 0.5]"`` -> list); other text is kept."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    return value
