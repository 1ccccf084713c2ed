"""Plain supervised training with labels (cross entropy): the binary network (``--method
supervised``) or the float teacher with a linear classifier (``--method teacher
--teacher-objective supervised``, the target of the supervised-KL baseline)."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from train.config import PretrainConfig
from train.data import dataset_info
from train.methods.common import Method, build_student, load_init
from train.models import Teacher, TeacherConfig


class Supervised(Method):
    """Cross entropy of ``head(student.forward_features(x))`` against the labels."""

    data = "supervised"

    def __init__(self, student: nn.Module, classifier: nn.Module | None = None):
        super().__init__()
        self.student = student
        self.classifier = classifier  # None: the student's own head produces the logits

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> "Supervised":
        num_classes = dataset_info(cfg.dataset).num_classes
        student = build_student(cfg, num_classes)  # head_hidden from the config (see the class docstring)
        if cfg.init:
            load_init(cfg.init, student, {}, cfg.method)
        return cls(student)

    @classmethod
    def teacher_from_config(cls, cfg: PretrainConfig) -> "Supervised":
        teacher = Teacher(TeacherConfig(cfg.teacher_arch, cfg.teacher_small_input))
        return cls(teacher, nn.Linear(teacher.feature_dim, dataset_info(cfg.dataset).num_classes))

    def forward(self, batch, step: int, total: int) -> dict:
        x, y = batch[0], batch[1]  # (N, 3, S, S), (N,); a loader batch also carries indices
        out = self.student(x)
        logits = out if self.classifier is None else self.classifier(out)  # (N, classes)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().detach()}

    def heads(self) -> dict[str, nn.Module]:
        return {} if self.classifier is None else {"classifier": self.classifier}
