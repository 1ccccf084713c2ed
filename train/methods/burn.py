"""BURN (Kim & Choi, CVPR 2022): a binary network trained against a random classifier on a frozen teacher.

Modules (paper notation):

* ``teacher``    h_zeta, frozen float feature extractor (no gradients; BatchNorm in eval mode, or in
                 batch-statistics mode as the official code's frozen teacher, ``teacher_bn``).
* ``classifier`` g_theta, randomly initialised float MLP head on h's features (Linear-BN-ReLU-Linear,
                 kaiming-normal init): fixed (``freeze_classifier``, the official code) or trained jointly
                 (the paper's Algorithm 1).
* ``student``    b_phi = l_phi(k_phi(x)), the binary ReActNet-A with its MLP head.

Loss per step (Eq. 4), on two augmented views, crossed:
``mean over (i, j) in {(1, 2), (2, 1)} of (1 - lambda) KL(g(h(v_j)) || l(k(v_i))) + lambda FS``.

Where FS is computed (``fs_on``):

* ``"heads"`` (the official code; both recipes): FS(g(h(x)), l(k(x))) on the two head outputs, the
  vectors the KL term sees. With a fixed g this anchors l(k(x)) to a fixed random projection of h(x);
  with a jointly trained g both sides move, and on digits-tiny g and l collapse together (KL -> 0
  within ~30 steps; measured, docs/training.md).
* ``"features"`` (an experiment, not a recipe): FS(h(x), P k(x)) between the teacher features and a
  trainable bias-free linear map P (``fs_projector``) of the binary features, both standardised per
  dimension over the batch (:func:`standardize`).

The named choices are the recipes in :data:`train.config.RECIPES`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from train.config import PretrainConfig
from train.losses import burn_loss
from train.methods.common import (
    Method,
    build_student,
    kaiming_init_,
    load_init,
    random_classifier,
    require_teacher,
    split_views,
)
from train.models import ReActNetA, Teacher
from train.schedules import lambda_at


def standardize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per dimension over the batch: (N, C) -> (N, C) (a constant column -> 0)."""
    return (x - x.mean(0)) / (x.std(0) + eps)


class Burn(Method):
    data = "two_views"

    def __init__(self, student: ReActNetA, teacher: Teacher, classifier: nn.Module, *, temperature: float = 0.2,
                 lam_schedule: str = "cosine", lam_start: float = 0.9, lam_end: float = 0.7, fs: str = "cosine",
                 freeze_classifier: bool = False, fs_on: str = "features", teacher_bn: str = "eval"):
        super().__init__()
        self.student, self.teacher, self.classifier = student, teacher.freeze(), classifier
        self.teacher_bn = teacher_bn
        self.temperature, self.fs, self.fs_on = temperature, fs, fs_on
        same = student.feature_dim == teacher.feature_dim
        self.fs_projector = nn.Identity() if same or fs_on != "features" else \
            nn.Linear(student.feature_dim, teacher.feature_dim, bias=False)
        self.lam_schedule, self.lam_start, self.lam_end = lam_schedule, lam_start, lam_end
        if freeze_classifier:
            self.classifier.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg: PretrainConfig, teacher: Teacher | None = None) -> "Burn":
        """The method ``cfg`` names; ``teacher`` (benchmarks: random weights) replaces the checkpoint's."""
        teacher = require_teacher(cfg) if teacher is None else teacher
        student = build_student(cfg, cfg.head_dim)
        kaiming_init_(student.head)  # l_phi, initialised as the official neck
        classifier = random_classifier(teacher.feature_dim, cfg)
        method = cls(student, teacher, classifier, temperature=cfg.temperature, lam_schedule=cfg.lam_schedule,
                     lam_start=cfg.lam_start, lam_end=cfg.lam_end, fs=cfg.fs, freeze_classifier=cfg.freeze_classifier,
                     fs_on=cfg.fs_on, teacher_bn=cfg.teacher_bn)
        if cfg.init:
            load_init(cfg.init, student, method.heads(), cfg.method)
        return method

    def train(self, mode: bool = True):
        """Train mode for the student and g; the frozen teacher's BN per ``teacher_bn`` ("batch": batch
        statistics, as the official code's teacher, which mmcv's ``model.train()`` reaches)."""
        super().train(mode)
        if mode and self.teacher_bn == "batch":
            nn.Module.train(self.teacher, True)  # bypass Teacher.train's frozen-stays-eval rule
        return self

    @property
    def trains_classifier(self) -> bool:
        """False for the official recipe's fixed random g (then g runs without an autograd graph)."""
        return any(p.requires_grad for p in self.classifier.parameters())

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
        h = self.teacher_features(x)  # (2N, C_h), no graph
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.trains_classifier):
            target = self.classifier(h)  # g(h(x)): (2N, D); a graph only when g trains (paper recipe)
        k = self.student.forward_features(x)  # (2N, C_k)
        student = self.student.forward_head(k)  # l(k(x)): (2N, D)
        if self.fs_on == "features":
            fs_t, fs_s = standardize(h), standardize(self.fs_projector(k))  # (2N, C_h) each
        else:
            fs_t, fs_s = target, student
        lam = self.lam(step, total)
        parts = [burn_loss(target[j], student[i], lam, self.temperature, self.fs, fs_t[j], fs_s[i])
                 for i, j in ((slice(0, n), slice(n, None)), (slice(n, None), slice(0, n)))]  # crossed views
        return {"loss": (parts[0].total + parts[1].total) / 2, "kl": (parts[0].kl + parts[1].kl).detach() / 2,
                "fs": (parts[0].fs + parts[1].fs).detach() / 2, "lam": lam}

    def heads(self) -> dict[str, nn.Module]:
        heads = {"classifier": self.classifier}
        if isinstance(self.fs_projector, nn.Linear):
            heads["fs_projector"] = self.fs_projector
        return heads
