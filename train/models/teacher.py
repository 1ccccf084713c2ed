"""Float feature extractor h_zeta: a torchvision ResNet with its classifier removed.

Checkpoint formats accepted by :func:`load_teacher_weights`:

* torchvision (``conv1.weight``, ``layer1.0...``; ``fc.*`` is dropped),
* MoCo v1/v2 (``{"state_dict": {"module.encoder_q.conv1.weight", ..., "module.encoder_q.fc.*"}}``;
  only ``encoder_q`` is kept, fc dropped),
* burn-edge teacher checkpoints written by ``python -m train.pretrain --method teacher``
  (``{"kind": "teacher", "teacher_arch": {...}, "model": state_dict}``).

``small_input=True`` swaps the stem for a 3x3 stride-1 conv and removes the max-pool (the usual
CIFAR variant), for 32x32 inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torchvision

from common.errors import CheckpointError, ConfigError
from train.models.layers import FastMaxPool2d

TEACHER_ARCHS = {
    "resnet18": torchvision.models.resnet18,
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
}


@dataclass
class TeacherConfig:
    arch: str = "resnet50"
    small_input: bool = False

    def __post_init__(self):
        if self.arch not in TEACHER_ARCHS:
            raise ConfigError(f"unknown teacher arch {self.arch!r}; choose one of {sorted(TEACHER_ARCHS)}")


class Teacher(nn.Module):
    """h_zeta: (N, 3, H, W) -> (N, feature_dim) globally pooled ResNet features (512 or 2048)."""

    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        self.cfg = cfg
        net = TEACHER_ARCHS[cfg.arch](weights=None)
        if cfg.small_input:
            net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        else:  # the same pool (no state), faster on CPU without a graph (train.models.layers.set_fast)
            net.maxpool = FastMaxPool2d(kernel_size=3, stride=2, padding=1)
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def freeze(self) -> "Teacher":
        """Frozen, eval-mode extractor: no parameter requires grad; BN uses running statistics."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True):
        # A frozen teacher stays in eval mode even when a wrapper calls .train().
        if mode and not any(p.requires_grad for p in self.parameters()):
            mode = False
        return super().train(mode)


def _extract_backbone_state(obj) -> dict:
    """Return a torchvision-keyed state dict (no fc) from any accepted checkpoint layout."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"teacher checkpoint is a {type(obj).__name__}, not a state dict")
    if obj.get("kind") == "teacher" and "model" in obj:
        sd = obj["model"]
        sd = {k[len("net."):] if k.startswith("net.") else k: v for k, v in sd.items()}
    else:
        sd = obj.get("state_dict", obj.get("model", obj))
        if not isinstance(sd, dict):
            raise CheckpointError("teacher checkpoint has no state dict")
        if any(k.startswith(("module.encoder_q.", "encoder_q.")) for k in sd):  # MoCo
            sd = {k.split("encoder_q.", 1)[1]: v for k, v in sd.items() if "encoder_q." in k}
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}


def load_teacher_weights(teacher: Teacher, checkpoint: dict) -> Teacher:
    """Load a torchvision / MoCo / burn-edge teacher checkpoint (already read) into ``teacher``."""
    sd = _extract_backbone_state(checkpoint)
    target = teacher.net.state_dict()
    missing = [k for k in target if k not in sd and not k.startswith("fc.")]
    unexpected = [k for k in sd if k not in target]
    wrong = [k for k in sd if k in target and sd[k].shape != target[k].shape]
    if missing or unexpected or wrong:
        hint = ""
        if "conv1.weight" in wrong:
            hint = " (conv1 shape differs: check --teacher-small-input / the input resolution)"
        raise CheckpointError(
            f"checkpoint does not match teacher {teacher.cfg.arch}{hint}: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(wrong)} with wrong shape (e.g. {wrong[:3]})")
    teacher.net.load_state_dict(sd, strict=False)
    return teacher


def build_teacher(arch: str = "resnet50", checkpoint: str | None = None, *, small_input: bool = False,
                  frozen: bool = True) -> Teacher:
    """Build h_zeta, optionally loading ``checkpoint`` (path; read with weights_only=True)."""
    from train.checkpoint import check_model_values, read_checkpoint  # local import: checkpoint imports models

    t = Teacher(TeacherConfig(arch=arch, small_input=small_input))
    if checkpoint is not None:
        load_teacher_weights(t, read_checkpoint(checkpoint))
        check_model_values(t, checkpoint)  # the one validity check (finite, BN variances >= 0, sane magnitudes)
    return t.freeze() if frozen else t

