"""BURN (Kim & Choi, CVPR 2022): binary network trained against a jointly trained random classifier.

Modules (paper notation):

* ``teacher``    h_zeta, frozen float feature extractor (eval mode, no gradients).
* ``classifier`` g_theta, randomly initialised float MLP head on h's features, trained *jointly*.
* ``student``    b_phi = l_phi(k_phi(x)), the binary ReActNet-A with its MLP head.

Loss per step (Eq. 4), on two augmented views, crossed:
``mean over (i, j) in {(1, 2), (2, 1)} of (1 - lambda) KL(g(h(v_j)) || l(k(v_i))) + lambda FS``.

Where FS is computed: Eq. 4 compares h(x) with k(x), but their dimensions differ (2048 vs 1024 for
ResNet-50 vs ReActNet-A). As in the official code, FS compares the *head outputs* g(h(x)) and l(k(x))
(both ``head_dim``-d), the same vectors the KL term sees. So g also receives FS gradients.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from train.config import PretrainConfig
from train.losses import burn_loss
from train.methods.common import build_student, load_init, random_classifier, require_teacher, split_views
from train.models import ReActNetA, Teacher
from train.schedules import lambda_at


class Burn(nn.Module):
    data = "two_views"
    frozen = ("teacher",)  # restored from the teacher checkpoint, never saved with the run

    def __init__(self, student: ReActNetA, teacher: Teacher, classifier: nn.Module, *, temperature: float = 0.2,
                 lam_schedule: str = "cosine", lam_start: float = 0.9, lam_end: float = 0.7, fs: str = "cosine",
                 freeze_classifier: bool = False):
        super().__init__()
        self.student, self.teacher, self.classifier = student, teacher.freeze(), classifier
        self.temperature, self.fs = temperature, fs
        self.lam_schedule, self.lam_start, self.lam_end = lam_schedule, lam_start, lam_end
        if freeze_classifier:
            self.classifier.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> "Burn":
        teacher = require_teacher(cfg)
        student = build_student(cfg, cfg.head_dim)
        classifier = random_classifier(teacher.feature_dim, cfg)
        if cfg.init:
            load_init(cfg.init, student, {"classifier": classifier}, cfg.method)
        return cls(student, teacher, classifier, temperature=cfg.temperature, lam_schedule=cfg.lam_schedule,
                   lam_start=cfg.lam_start, lam_end=cfg.lam_end, fs=cfg.fs, freeze_classifier=cfg.freeze_classifier)

    def lam(self, step: int, total: int) -> float:
        return lambda_at(self.lam_schedule, step, total, self.lam_start, self.lam_end)

    @torch.no_grad()
    def teacher_features(self, x: torch.Tensor) -> torch.Tensor:
        """h_zeta(x): (2N, 3, S, S) -> (2N, C_h); one pass for both views, no autograd graph."""
        return self.teacher(x)

    def forward(self, batch, step: int, total: int) -> dict:
        v1, v2 = split_views(batch)
        n = len(v1)
        x = torch.cat([v1, v2])  # (2N, 3, S, S): both views in one pass
        target = self.classifier(self.teacher_features(x))  # g(h(x)): (2N, D), gradients reach g
        student = self.student(x)  # l(k(x)): (2N, D)
        lam = self.lam(step, total)
        a = burn_loss(target[n:], student[:n], lam, self.temperature, self.fs)  # binary v1 vs target v2
        b = burn_loss(target[:n], student[n:], lam, self.temperature, self.fs)  # binary v2 vs target v1
        return {"loss": (a.total + b.total) / 2, "kl": (a.kl + b.kl).detach() / 2,
                "fs": (a.fs + b.fs).detach() / 2, "lam": lam}

    def heads(self) -> dict[str, nn.Module]:
        return {"classifier": self.classifier}
