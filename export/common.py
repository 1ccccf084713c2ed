"""What both exporters share: output kinds, ``upto`` taps and the metadata they write (keys: runtimes.format)."""

from __future__ import annotations

import json

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
