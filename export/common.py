"""What both exporters share: output kinds, ``upto`` taps and the metadata they write (keys: runtimes.format)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from export.errors import ExportError
from runtimes.format import (
    META_ARCH,
    META_INPUT_SIZE,
    META_KIND,
    META_LAYOUT,
    META_MEAN,
    META_OUTPUT,
    META_SOURCE,
    META_STD,
)

if TYPE_CHECKING:  # torch is imported where it is used, so the CLIs' --help needs none
    import torch.nn as nn

    from train.models.reactnet import ReActNetA

OUTPUTS = ("logits", "features")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ExportError(f"unknown output {output!r}; choose one of {OUTPUTS}")
    return output


def check_upto(model: ReActNetA, upto: str | None) -> str | None:
    """``upto`` must be None or a ``feature_info()`` module path ("stem", "blocks.0", ...)."""
    if upto is None:
        return None
    taps = [f["module"] for f in model.feature_info()]
    if upto not in taps:
        raise ExportError(f"upto={upto!r} is not a stage of this network; choose one of {taps}")
    return upto


def make_metadata(model: ReActNetA, *, output: str, layout: str, kind: str, mean, std,
                  source_sha256: str = "") -> dict[str, str]:
    """The ``burn_edge.*`` metadata dict (all values strings; keys: :mod:`runtimes.format`)."""
    return {
        META_ARCH: json.dumps(model.cfg.to_dict(), sort_keys=True),
        META_INPUT_SIZE: str(model.cfg.input_size),
        META_MEAN: json.dumps([float(v) for v in mean]),
        META_STD: json.dumps([float(v) for v in std]),
        META_LAYOUT: layout,
        META_OUTPUT: output,
        META_SOURCE: source_sha256,
        META_KIND: kind,
    }


@dataclass(frozen=True)
class StageIO:
    """One stage of ``model.stages()`` with its per-sample input and output shapes (NCHW or (C,)) and the
    shapes of its binarisers' inputs by data-flow value name (``{"x": ..., "y": ...}`` for a Block)."""

    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    presign_shapes: dict[str, tuple[int, ...]]


def stage_io(model: ReActNetA, output: str = "logits", input_size: int | None = None) -> list[StageIO]:
    """Every stage of ``model.stages(output)`` with its shapes at ``input_size`` (default the model's),
    found by one eval-mode forward of a zero image (the model's train/eval mode is restored)."""
    import torch

    size = int(input_size or model.cfg.input_size)
    was_training, x, res = model.training, torch.zeros(1, 3, size, size), []
    model.eval()
    try:
        with torch.no_grad():
            for name, m in model.stages(check_output(output)):
                env = m.trace(x) if hasattr(m, "presign_points") else {}
                y = m(x)
                pre = {v: tuple(env[v].shape[1:]) for _, v in m.presign_points()} if env else {}
                res.append(StageIO(name, m, tuple(x.shape[1:]), tuple(y.shape[1:]), pre))
                x = y
    finally:
        model.train(was_training)
    return res
