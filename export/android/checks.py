"""Refuse assets the app would run wrongly: a model that is not TFLite, or one whose exporter metadata
(:mod:`runtimes.format` sidecar) disagrees with the layout, output, normalisation or size the app will use."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from common.errors import BurnEdgeError
from export.errors import AndroidAssetsError
from runtimes.format import META_INPUT_SIZE, META_LAYOUT, META_MEAN, META_OUTPUT, META_STD, decode_value, read_sidecar
from runtimes.tflite_flatbuffer import check_identifier


def check_tflite(path: Path, role: str) -> None:
    """``path`` exists and carries the TFLite file identifier."""
    if not path.is_file():
        raise AndroidAssetsError(f"{role} model not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    try:
        check_identifier(head, f"{role} model {path}")
    except BurnEdgeError as e:
        raise AndroidAssetsError(f"{e}; pass the .tflite written by python -m export.to_lce") from None


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
