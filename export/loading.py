"""Checkpoint -> eval-mode ReActNetA for export, with one clear error for each bad input.

Accepted inputs:

* burn-edge checkpoints (``train.checkpoint``): ``{"kind": "reactnet", "arch": ..., "model": ...}``; training
  checkpoints may carry more keys (optimizer, step, config, ...), which are ignored. The architecture comes
  from ``"arch"``.
* official ReActNet / BURN state dicts: they record no architecture, so it comes from the arch options
  (:func:`add_arch_args`: ``--width --num-classes --stage --padding --num-blocks --head-hidden``).

``--input-size`` (both kinds) re-targets the exported input resolution (the network is fully convolutional
up to its global pool); a size the network cannot take gives a ConfigError naming the nearest valid one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from common.cli import Range, check_options
from common.errors import CheckpointError
from common.files import ensure_writable_dir, refuse_same_path, remove_stale_temps, sha256_file
from train.data_info import DATASETS, IMAGENET_MEAN, IMAGENET_STD, dataset_info

if TYPE_CHECKING:  # torch is imported where a model is built, so the CLIs' --help needs none
    from train.models.reactnet import ReActNetA, ReActNetConfig

NUM_BLOCKS = 13  # ReActNet-A's blocks (train.models.reactnet.NUM_BLOCKS; a test keeps the two equal)


@dataclass
class LoadedModel:
    """An eval-mode model plus what export metadata needs."""

    model: ReActNetA
    source: Path
    sha256: str                 # of the checkpoint file
    mean: tuple[float, ...]     # input normalisation (RGB, on [0, 1] pixels)
    std: tuple[float, ...]
    official: bool              # loaded from an official-format state dict

    @property
    def stage(self) -> int:
        """1 = float weights (stage 1), 2 = binary weights."""
        return 2 if self.model.cfg.binary_weights else 1


def add_arch_args(p: argparse.ArgumentParser) -> None:
    """Options describing the input checkpoint (the arch options apply to official state dicts only)."""
    g = p.add_argument_group("input", "checkpoint options; width/num-classes/stage/padding/num-blocks/"
                             "head-hidden only describe official-format state dicts (burn-edge checkpoints "
                             "record their architecture)")
    g.add_argument("--input-size", type=int, default=None,
                   help="export for this square input resolution (default: the checkpoint's; ReActNet-A "
                        "needs a multiple of 32)")
    g.add_argument("--dataset", default=None, choices=sorted(DATASETS),
                   help="take the input mean/std from this data set (default: the one the checkpoint records, "
                        "else ImageNet's)")
    g.add_argument("--width", type=float, default=1.0, help="official state dict: width multiplier (default 1.0)")
    g.add_argument("--num-classes", type=int, default=1000, help="official state dict: classes (default 1000)")
    g.add_argument("--stage", type=int, choices=(1, 2), default=2,
                   help="official state dict: 1 = float weights, 2 = binary weights (default 2)")
    g.add_argument("--padding", choices=("zero", "one"), default="zero",
                   help="official state dict: binary conv padding (default zero, the official network)")
    g.add_argument("--num-blocks", type=int, default=None,
                   help=f"official state dict: number of blocks (default: all {NUM_BLOCKS} of ReActNet-A)")
    g.add_argument("--head-hidden", type=int, default=0,
                   help="official state dict: MLP head hidden size, 0 = linear head (default 0)")


# The numeric arch options (the one validator, common.cli): finite, in range. Sizes are bounded again by memory
# (common.limits) once the architecture is known.
ARCH_OPTION_RANGES = {
    "input_size": Range(1, 1 << 20, integer=True),
    "width": Range(0, 64, lo_open=True, optional=False),
    "num_classes": Range(1, 10_000_000, integer=True, optional=False),
    "num_blocks": Range(1, NUM_BLOCKS, integer=True),
    "head_hidden": Range(0, 1 << 20, integer=True, optional=False),
}


def arch_from_args(args: argparse.Namespace) -> ReActNetConfig:
    """The architecture official state dicts are read with (``input_size`` is applied afterwards). Every
    numeric option is validated first (ConfigError names the flag)."""
    from train.models.reactnet import ReActNetConfig

    check_options(args, ARCH_OPTION_RANGES)
    num_blocks = NUM_BLOCKS if args.num_blocks is None else args.num_blocks
    return ReActNetConfig(width=args.width, num_classes=args.num_classes, binary_weights=args.stage == 2,
                          padding=args.padding, num_blocks=num_blocks, head_hidden=args.head_hidden)


def _find_dataset(obj, depth: int = 0) -> str | None:
    """A data set name recorded anywhere in a checkpoint's (nested) config dicts (key ``dataset``)."""
    if not isinstance(obj, dict) or depth > 3:
        return None
    v = obj.get("dataset")
    if isinstance(v, str) and v in DATASETS:
        return v
    for k, sub in obj.items():
        if k != "model" and isinstance(sub, dict):
            found = _find_dataset(sub, depth + 1)
            if found:
                return found
    return None


def load_model(path: str | Path, *, arch: ReActNetConfig | None = None, input_size: int | None = None,
               dataset: str | None = None) -> LoadedModel:
    """Load ``path`` (burn-edge checkpoint or official state dict) into an eval-mode ReActNetA.

    arch:       architecture for official state dicts (default: ReActNet-A, stage 2); ignored for
                burn-edge checkpoints.
    input_size: override the input resolution (validated: ConfigError names the nearest valid size).
    dataset:    data set whose mean/std the metadata records (default: recorded in the checkpoint, else ImageNet).
    Raises CheckpointError (missing/corrupt/unsafe pickle/unknown architecture) or ConfigError.
    """
    from train.checkpoint import model_from_checkpoint, read_checkpoint, require_arch_fits
    from train.models.reactnet import ReActNetConfig

    path = Path(path)
    check_options({"input_size": input_size}, ARCH_OPTION_RANGES)
    ckpt = read_checkpoint(path)
    official = ckpt.get("kind") is None
    try:
        model = model_from_checkpoint(ckpt, None if not official else (arch or ReActNetConfig()))
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    if input_size is not None and input_size != model.cfg.input_size:
        cfg = replace(model.cfg, input_size=int(input_size))  # validates (ConfigError)
        require_arch_fits(cfg, f"--input-size {input_size}")
        model.cfg = cfg
    model.eval()
    name = dataset or _find_dataset(ckpt)
    if name is not None:
        info = dataset_info(name)
        mean, std = info.mean, info.std
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return LoadedModel(model, path, sha256_file(path), tuple(mean), tuple(std), official)


def nonfinite_tensors(model) -> list[str]:
    """Names of the parameters and floating-point buffers of ``model`` holding any NaN or Inf."""
    from train.checkpoint import nonfinite_names

    return nonfinite_names([*model.named_parameters(), *model.named_buffers()])


def require_finite(lm: LoadedModel) -> None:
    """CheckpointError unless the loaded model passes the one checkpoint validity check
    (:func:`train.checkpoint.check_model_values`: finite, BN variances >= 0, sane magnitudes). load_model already
    applies it; this re-checks a model changed after loading."""
    from train.checkpoint import check_model_values

    check_model_values(lm.model, lm.source)


def prepare_outputs(checkpoint: str | Path, *outputs: str | Path) -> None:
    """Before any long work: every output must differ from the input checkpoint, and its folder must be
    writable (created if needed); stale temp files a killed run left there are removed."""
    for out in outputs:
        refuse_same_path(out, checkpoint)
    for folder in dict.fromkeys(Path(o).parent for o in outputs):
        ensure_writable_dir(folder)
        remove_stale_temps(folder)


def load_stage(cl, args: argparse.Namespace) -> LoadedModel:
    """The export CLIs' "load" checklist stage: read ``args.checkpoint`` with the arch options of
    :func:`add_arch_args`, refuse non-finite weights and note what was loaded. ``cl`` is an
    :class:`export.stages.Checklist`."""
    with cl.stage("load", args.checkpoint):
        lm = load_model(args.checkpoint, arch=arch_from_args(args), input_size=args.input_size, dataset=args.dataset)
        require_finite(lm)
        cfg = lm.model.cfg
        cl.note(f"ReActNet-A width {cfg.width}, {cfg.num_blocks} blocks, {cfg.input_size}², "
                f"stage {lm.stage}, padding {cfg.padding}, {cfg.num_classes} outputs")
    return lm
