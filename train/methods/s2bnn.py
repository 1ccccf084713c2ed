"""S2-BNN baseline (Shen et al., CVPR 2021, ``Distillation_only``): distil a frozen self-supervised float
network into the binary student, KL only.

The target is the teacher *with its pretrained head* (the MoCo projector saved with a burn-edge
teacher, or ``encoder_q.fc`` of a MoCo-v2 checkpoint), frozen: nothing on the target side learns,
which is exactly what BURN replaces by a jointly trained random classifier.

As the public code (github.com/szq0214/S2-BNN, read for facts): both outputs are **L2-normalised before
dividing by T** (the MoCo encoders' ``forward`` returns ``normalize(encoder_q(x))``) and teacher and student
see **the same single view** (``images[0]``; the second crop of its two-crop loader is unused, as here).
The official loss is the soft-target cross entropy, which is this KL plus the target's entropy (a constant
for the student): same gradients. Without the normalisation the former digits teacher's projector outputs
(norm ~18, cosine 0.975 to their mean) give softmax(z / 0.2) 0.93 on one bucket on average, the same bucket
for most images: a near-constant target (docs/training.md, "S2-BNN as published").
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.config import PretrainConfig
from train.losses import kl_loss
from train.methods.common import (
    FrozenTargetDistiller,
    build_student,
    load_init,
    load_teacher_head,
    require_teacher,
    split_views,
)
from train.models import ReActNetA, Teacher


def s2bnn_loss(target: torch.Tensor, student: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """KL(softmax(t̂/T) ‖ softmax(ŝ/T)) with t̂ = t/|t|, ŝ = s/|s| (rows): (N, D), (N, D) -> scalar,
    summed over D, averaged over N. Invariant to the scale of either input."""
    return kl_loss(F.normalize(target, dim=1), F.normalize(student, dim=1), temperature)


class S2BNN(FrozenTargetDistiller):
    data = "two_views"  # the official two-crop loader; only the first view is used

    def __init__(self, student: ReActNetA, teacher: Teacher, teacher_head: nn.Module, temperature: float):
        super().__init__(student, teacher, teacher_head, temperature)

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> "S2BNN":
        teacher = require_teacher(cfg)
        head = load_teacher_head(cfg.teacher_checkpoint, "projector")
        out_dim = list(head.parameters())[-1].shape[0]
        student = build_student(cfg, out_dim)
        if cfg.init:
            load_init(cfg.init, student, {}, cfg.method)
        return cls(student, teacher, head, cfg.temperature)

    def forward(self, batch, step: int, total: int) -> dict:
        x, _ = split_views(batch)  # (N, 3, S, S): teacher and student see the same view
        kl = s2bnn_loss(self.target(x), self.student(x), self.temperature)
        return {"loss": kl, "kl": kl.detach()}
