"""Write the assets folder: model copies, ``labels.txt``, ``samples/`` and ``metadata.json`` (schema:
:mod:`export.android.contract`). Any earlier ``model_*.tflite`` / ``samples/*.png`` are replaced; every file is
written as one artefact set (:class:`common.files.ArtefactSet`): every file goes to a temp name first, so a full
disk or an error leaves the previous assets untouched; then all are renamed, ``metadata.json`` last, and stale
files of the previous set are removed. ``metadata.json`` records each model's sha256, binding the set."""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.files import ArtefactSet, sha256_file
from export.android.checks import check_runs, check_sidecar, check_target, check_tflite
from export.android.contract import (
    FORMAT,
    FORMULA,
    LABELS_FILE,
    METADATA_FILE,
    MODEL_FILES,
    SAMPLES_DIR,
    SCALE,
    VERSION,
)
from export.android.samples import write_samples
from export.errors import AndroidAssetsError


def _check_inputs(models: dict, input_size, mean, std, class_names, arch: dict):
    """-> (hw, mean, std, names) validated; AndroidAssetsError names the first problem."""
    if all(v is None for v in models.values()):
        raise AndroidAssetsError("no model given: pass an LCE model, a float model, or both")
    hw = (int(input_size), int(input_size)) if np.isscalar(input_size) else tuple(int(v) for v in input_size)
    if len(hw) != 2 or min(hw) < 1:
        raise AndroidAssetsError(f"input_size must be S or (H, W) with positive sizes, got {input_size!r}")
    mean = [float(v) for v in mean]
    std = [float(v) for v in std]
    if len(mean) != 3 or len(std) != 3:
        raise AndroidAssetsError(f"mean and std need 3 values (RGB), got mean={mean} std={std}")
    if not all(math.isfinite(v) for v in mean) or not all(math.isfinite(v) and v > 0 for v in std):
        raise AndroidAssetsError(f"mean must be finite and std > 0, got mean={mean} std={std}")
    names = [str(c) for c in class_names]
    if not names or any(not c.strip() or "\n" in c or "\r" in c for c in names):
        raise AndroidAssetsError("class names must be non-empty single-line strings")
    k = arch.get("num_classes")
    if k is not None and int(k) != len(names):
        raise AndroidAssetsError(f"the model has {k} outputs but {len(names)} class names were given "
                                 f"(a BURN pre-training checkpoint outputs features, not classes: export the "
                                 f"linear-evaluated or fine-tuned checkpoint)")
    s = arch.get("input_size")
    if s is not None and (int(s), int(s)) != hw:
        raise AndroidAssetsError(f"the checkpoint's input_size is {s} but the assets would use {hw[0]}x{hw[1]}")
    for role, p in models.items():
        if p is not None:
            check_tflite(Path(p), role)
            check_sidecar(Path(p), role, hw, mean, std)
    check_runs({role: Path(p) for role, p in models.items() if p is not None})
    return hw, mean, std, names


def write_android_assets(assets_dir: str | os.PathLike, *, lce_model: str | os.PathLike | None = None,
                         float_model: str | os.PathLike | None = None, arch: dict, input_size: int | Sequence[int],
                         mean: Sequence[float], std: Sequence[float], class_names: Sequence[str],
                         source_checkpoint: str | os.PathLike | None,
                         samples: Sequence[tuple[np.ndarray, str]] = ()) -> Path:
    """Write models, labels, samples and ``metadata.json`` into ``assets_dir``; return the metadata path.

    input_size: S or (H, W); mean/std: 3 floats on the [0, 1] pixel scale (RGB); class_names: one per model
    output; arch: the checkpoint's ``"arch"`` dict (stored for reference; its ``num_classes`` and
    ``input_size`` must agree with the other arguments); source_checkpoint: path of the checkpoint the
    models came from (hashed if it exists). samples: (image uint8 (H, W, 3), label) pairs, saved as PNG.
    Every model is bounds-verified, then loaded and run once in a child process (:func:`.checks.check_runs`)
    before anything is written; AndroidAssetsError names the first problem.
    """
    models = {"lce": lce_model, "float": float_model}
    hw, mean, std, names = _check_inputs(models, input_size, mean, std, class_names, arch)

    out = Path(assets_dir)
    check_target(out, [*MODEL_FILES.values(), LABELS_FILE, METADATA_FILE, SAMPLES_DIR],
                 [lce_model, float_model, source_checkpoint])
    model_meta: dict[str, dict | None] = {}
    with ArtefactSet() as files:
        for role, p in models.items():
            dst = out / MODEL_FILES[role]
            if p is None:
                files.remove(dst)  # never leave a stale model the metadata does not describe
                model_meta[role] = None
                continue
            files.copy(Path(p), dst)
            tmp = files.staged(dst)  # hash what is written, not the source again
            model_meta[role] = {"file": MODEL_FILES[role], "bytes": tmp.stat().st_size, "sha256": sha256_file(tmp),
                                "source": Path(p).name}
        files.write_text(out / LABELS_FILE, "".join(c + "\n" for c in names))
        sample_meta = write_samples(out, samples, hw, files)

        src = None
        if source_checkpoint is not None:
            sp = Path(source_checkpoint)
            src = {"file": sp.name, "sha256": sha256_file(sp) if sp.is_file() else None}
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "input": {"layout": "NHWC", "dtype": "float32", "batch": 1, "height": hw[0], "width": hw[1],
                      "channels": 3, "color": "RGB", "scale": SCALE, "mean": mean, "std": std, "formula": FORMULA},
            "output": {"kind": "logits", "num_classes": len(names)},
            "class_names": names,
            "labels_file": LABELS_FILE,
            "models": model_meta,
            "samples": sample_meta,
            "arch": dict(arch),
            "source_checkpoint": src,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        files.write_json(out / METADATA_FILE, meta)
    return out / METADATA_FILE
