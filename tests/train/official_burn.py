"""A synthetic official BURN checkpoint (OpenSelfSup/mmcv layout) written from a burn-edge ReActNetA.

The key names are the official repository's (github.com/naver-ai/burn: ``ReActnet(use_mlp=True)`` as
``backbone``, ``NonLinearNeckSimCLR`` as ``neck``, the teacher branch as ``diff_branch_net``), stated
here independently of the loader in ``train/models/reactnet.py``.
"""

from __future__ import annotations

import torch

from train.models import ReActNetA

_BLOCK = {"rsign1.bias": "move11.bias", "conv3x3": "binary_3x3", "bn1": "bn1",
          "rprelu1.bias_in": "move12.bias", "rprelu1.prelu.weight": "prelu1.weight",
          "rprelu1.bias_out": "move13.bias", "rsign2.bias": "move21.bias",
          "rprelu2.bias_in": "move22.bias", "rprelu2.prelu.weight": "prelu2.weight",
          "rprelu2.bias_out": "move23.bias"}
_NECK = {"head.0": "neck.fc0", "head.1": "neck.bn0", "head.3": "neck.fc1"}


def _official(key: str, model: ReActNetA) -> str:
    if key.startswith("stem."):
        return "backbone.feature.0." + key[5:].replace("conv.", "conv1.").replace("bn.", "bn1.")
    if key.startswith("mlp."):
        return "backbone.fc." + key[4:]
    for ours, theirs in _NECK.items():
        if key.startswith(ours + "."):
            return theirs + key[len(ours):]
    _, i, rest = key.split(".", 2)
    doubling = model.blocks[int(i)].out_channels != model.blocks[int(i)].in_channels
    for ours, theirs in _BLOCK.items():
        if rest == ours or rest.startswith(ours + "."):
            rest = theirs + rest[len(ours):]
            break
    else:
        for j in (0, 1):
            pw = f"binary_pw_down{j + 1}" if doubling else "binary_pw"
            bn = f"bn2_{j + 1}" if doubling else "bn2"
            rest = rest.replace(f"conv1x1.{j}.", pw + ".").replace(f"bn2.{j}.", bn + ".")
    return f"backbone.feature.{int(i) + 1}.{rest}"


def openselfsup_checkpoint(model: ReActNetA) -> dict:
    """``{"meta": ..., "state_dict": {backbone.*, neck.*, diff_branch_net.*}}`` holding ``model``'s weights."""
    sd = {_official(k, model): v.clone() for k, v in model.state_dict().items()}
    sd["diff_branch_net.0.conv1.weight"] = torch.randn(64, 3, 7, 7)  # the teacher h: not the binary network
    sd["diff_branch_net.1.fc0.weight"] = torch.randn(20, 512)  # the target head g
    return {"meta": {"epoch": 200}, "state_dict": sd}
