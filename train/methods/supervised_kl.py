"""ReActNet-style distillation (Liu et al., ECCV 2020): the binary network matches the class
distribution of a float network trained *with labels*, KL only (labels are not used in the loss).

The target is a supervised teacher (``--method teacher --teacher-objective supervised``) with its
classifier, frozen. One augmented view per image; T = ``temperature`` (1.0 in the presets).
"""

from __future__ import annotations

import torch.nn as nn

from train.config import PretrainConfig
from train.losses import kl_loss
from train.methods.common import FrozenTargetDistiller, build_student, load_init, load_teacher_head, require_teacher
from train.models import ReActNetA, Teacher


class SupervisedKL(FrozenTargetDistiller):
    data = "supervised"

    def __init__(self, student: ReActNetA, teacher: Teacher, teacher_head: nn.Module, temperature: float = 1.0):
        super().__init__(student, teacher, teacher_head, temperature)

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> "SupervisedKL":
        teacher = require_teacher(cfg)
        head = load_teacher_head(cfg.teacher_checkpoint, "classifier")
        student = build_student(cfg, head.out_features)  # head_hidden from the config (docs/training.md)
        if cfg.init:
            load_init(cfg.init, student, {}, cfg.method)
        return cls(student, teacher, head, cfg.temperature)

    def forward(self, batch, step: int, total: int) -> dict:
        x = batch[0]  # (N, 3, S, S); labels (and indices) unused
        kl = kl_loss(self.target(x), self.student(x), self.temperature)  # target: (N, classes)
        return {"loss": kl, "kl": kl.detach()}
