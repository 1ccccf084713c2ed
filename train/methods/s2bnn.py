"""S2-BNN baseline (Shen et al., CVPR 2021): distil a frozen self-supervised float network, KL only.

The target is the teacher *with its pretrained head* (the MoCo projector saved with a burn-edge
teacher, or ``encoder_q.fc`` of a MoCo-v2 checkpoint), frozen: nothing on the target side learns,
which is exactly what BURN replaces by a jointly trained random classifier. Views are crossed as in
:class:`train.methods.burn.Burn`, so the two methods differ only in the target and the loss.
"""

from __future__ import annotations

import torch
import torch.nn as nn

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


class S2BNN(FrozenTargetDistiller):
    data = "two_views"

    def __init__(self, student: ReActNetA, teacher: Teacher, teacher_head: nn.Module, temperature: float = 0.2):
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
        v1, v2 = split_views(batch)
        n = len(v1)
        x = torch.cat([v1, v2])
        target, student = self.target(x), self.student(x)  # (2N, D) each
        t = self.temperature
        kl = (kl_loss(target[n:], student[:n], t) + kl_loss(target[:n], student[n:], t)) / 2  # crossed views
        return {"loss": kl, "kl": kl.detach()}
