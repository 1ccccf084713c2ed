"""Refuse assets the app would run wrongly: a model that is not TFLite, one that does not load and run (tested
once in a child process, :mod:`runtimes.isolate`), or one whose exporter metadata (:mod:`runtimes.format`
sidecar) disagrees with the layout, output, normalisation or size the app will use."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from common.errors import BurnEdgeError
from common.files import ensure_writable_dir, refuse_same_path, remove_stale_temps
from export.android.contract import SAMPLES_DIR
from export.errors import AndroidAssetsError
from runtimes.format import META_INPUT_SIZE, META_LAYOUT, META_MEAN, META_OUTPUT, META_STD, decode_value, read_sidecar
from runtimes.isolate import probe_models
from runtimes.tflite_flatbuffer import check_identifier
from runtimes.tflite_verify import verify_tflite


def check_tflite(path: Path, role: str) -> None:
    """``path`` exists and is a whole TFLite flatbuffer (bounds-verified, so a truncated model from a killed
    export is refused instead of being packaged)."""
    if not path.is_file():
        raise AndroidAssetsError(f"{role} model not found: {path}")
    try:
        data = path.read_bytes()
        check_identifier(data[:8], f"{role} model {path}")
        verify_tflite(data, f"{role} model {path}")
    except OSError as e:
        raise AndroidAssetsError(f"cannot read {role} model {path}: {e.strerror or e}") from None
    except BurnEdgeError as e:
        raise AndroidAssetsError(f"{e}; pass the .tflite written by python -m export.to_lce") from None


def check_runs(models: dict[str, Path]) -> None:
    """Load every model ({role: path}) and run it once on a zero input, all in one child process (the one
    isolated loader, :func:`runtimes.isolate.probe_models`; backend from the file's ops, LCE ``default``
    kernel). A model the interpreter refuses to prepare, or one that crashes it (a bit flip the bounds
    verifier cannot see, e.g. a conv stride of 0), is refused: the app would fail or die on it."""
    if not models:
        return
    try:
        probe_models([(p, None, ["default"]) for p in models.values()])
    except BurnEdgeError as e:
        raise AndroidAssetsError(f"{e}; android_assets packages only models that load and run (pass the .tflite "
                                 "written by python -m export.to_lce)") from None


def check_target(out: Path, names: Sequence[str], inputs: Sequence[str | os.PathLike | None]) -> Path:
    """Make ``out`` a writable folder and check every path the writer will touch (``names`` relative to it,
    and the PNGs already in the samples folder) before anything is written: no symbolic link (the writer
    never writes or deletes through one), nothing resolving outside ``out``, no input file among them."""
    ensure_writable_dir(out, "assets folder")
    root = out.resolve()
    paths = [out / n for n in names]
    samples = out / SAMPLES_DIR
    if samples.is_dir() and not samples.is_symlink():
        paths += sorted(samples.glob("*.png"))
    for p in paths:
        if p.is_symlink():
            raise AndroidAssetsError(f"{p} is a symbolic link; android_assets never writes or deletes through "
                                     "links (remove it, or choose another assets folder)")
        if p.exists() and not p.resolve().is_relative_to(root):
            raise AndroidAssetsError(f"{p} resolves outside the assets folder {root}")
    for p in paths:
        refuse_same_path(p, *inputs, what="asset")
    for folder in (out, samples):
        if folder.is_dir() and not folder.is_symlink():
            remove_stale_temps(folder)  # temps of a killed earlier run
    return root


def model_metadata(path: str | os.PathLike) -> dict:
    """The exporter's ``burn_edge.*`` metadata of a .tflite model with JSON values decoded; {} if there is none."""
    try:
        meta = read_sidecar(path)
    except BurnEdgeError as e:
        raise AndroidAssetsError(str(e)) from None
    return {k: decode_value(v) for k, v in (meta or {}).items()}


def check_sidecar(path: Path, role: str, size: tuple[int, int], mean: Sequence[float], std: Sequence[float]) -> None:
    """If the exporter's metadata sidecar exists, it must agree with what the app will feed."""
    meta = model_metadata(path)
    if not meta:
        return
    layout = meta.get(META_LAYOUT)
    if layout not in (None, "NHWC"):
        raise AndroidAssetsError(f"{role} model {path} has layout {layout}; the app feeds NHWC")
    output = meta.get(META_OUTPUT)
    if output not in (None, "logits"):
        raise AndroidAssetsError(f"{role} model {path} outputs {output!r}; the app needs a logits model "
                                 "(export with --model-output logits)")
    for key, want in ((META_MEAN, mean), (META_STD, std)):
        got = meta.get(key)
        if got is not None and (len(got) != 3 or any(abs(float(a) - b) > 1e-6 for a, b in zip(got, want))):
            raise AndroidAssetsError(f"{role} model {path} was exported with {key.split('.')[1]}={got}, but the "
                                     f"assets would use {list(want)}; pass matching --mean/--std")
    got = meta.get(META_INPUT_SIZE)
    if got is not None:
        hw = (int(got), int(got)) if isinstance(got, (int, float)) else tuple(int(v) for v in got[-2:])
        if hw != tuple(size):
            raise AndroidAssetsError(f"{role} model {path} takes {hw[0]}x{hw[1]} images, the checkpoint "
                                     f"{size[0]}x{size[1]}")
