"""ReActNet-style distillation (Liu et al., ECCV 2020): the binary network matches the class
distribution of a float network trained *with labels*, KL only (labels are not used in the loss).

The target is a supervised teacher (``--method teacher --teacher-objective supervised``) with its
classifier, frozen. One augmented view per image; T = ``temperature`` (1.0 in the presets).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from train.config import PretrainConfig
from train.losses import kl_loss
from train.methods.common import build_student, load_init, load_teacher_head, require_teacher
from train.models import ReActNetA, Teacher


class SupervisedKL(nn.Module):
    data = "supervised"
    frozen = ("teacher", "teacher_head")

    def __init__(self, student: ReActNetA, teacher: Teacher, teacher_head: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.student, self.teacher, self.teacher_head = student, teacher.freeze(), teacher_head
        self.teacher_head.eval().requires_grad_(False)
        self.temperature = temperature

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> "SupervisedKL":
        teacher = require_teacher(cfg)
        head = load_teacher_head(cfg.teacher_checkpoint, "classifier")
        student = build_student(cfg, head.out_features, head_hidden=0)
        if cfg.init:
            load_init(cfg.init, student, {}, cfg.method)
        return cls(student, teacher, head, cfg.temperature)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher_head.eval()
        return self

    def forward(self, batch, step: int, total: int) -> dict:
        x, _ = batch  # (N, 3, S, S), labels unused
        with torch.no_grad():
            target = self.teacher_head(self.teacher(x))  # (N, classes)
        kl = kl_loss(target, self.student(x), self.temperature)
        return {"loss": kl, "kl": kl.detach()}

    def heads(self) -> dict[str, nn.Module]:
        return {}
