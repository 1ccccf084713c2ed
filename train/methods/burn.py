"""BURN (Kim & Choi, CVPR 2022): a binary network trained against a random classifier on a frozen teacher.

Modules (paper notation):

* ``teacher``    h_zeta, frozen float feature extractor (no gradients; BatchNorm in eval mode, or in
                 batch-statistics mode as the official code's frozen teacher, ``teacher_bn``).
* ``classifier`` g_theta, randomly initialised float MLP head on h's features (Linear-BN-ReLU-Linear,
                 kaiming-normal init): fixed (``freeze_classifier``, the official code) or trained jointly
                 (the paper's Algorithm 1).
* ``student``    b_phi = l_phi(k_phi(x)), the binary ReActNet-A with its MLP head.

Loss per step (Eq. 4), on two augmented views, crossed:
``mean over (i, j) in {(1, 2), (2, 1)} of (1 - lambda) KL + lambda FS``, with the KL's direction
``kl_direction``: ``"target-student"`` = KL(g(h(v_j)) || l(k(v_i))) (the official code) or
``"student-target"`` = KL(l(k(v_i)) || g(h(v_j))) (the paper's Alg. 1, D_KL(p2 || p1)).

Where FS is computed (``fs_on``):

* ``"heads"`` (the official code, recipe ``official``): FS(g(h(x)), l(k(x))) on the two head outputs,
  the vectors the KL term sees. With a fixed g this anchors l(k(x)) to a fixed random projection of
  h(x); with a jointly trained g both sides move and can collapse together (docs/training.md).
* ``"features"`` (the paper's Eq. 4, recipe ``paper``): FS(h(x), P k(x)) between the feature
  extractors' outputs, "bypassing the classifier": the one term that anchors the binary side to the
  frozen teacher whatever g does. P (``fs_projector``) is a trainable bias-free linear map C_k -> C_h
  when the widths differ (the paper has no such map: ResNet-50's 2048 vs ReActNet-A's 1024 features
  differ, so Eq. 4 needs one), the identity when they agree.

The named choices are the recipes in :data:`train.config.RECIPES`; :meth:`Burn.from_config` is the one
way the engine, tests and benchmarks build the method (the constructor has no defaults to disagree
with a recipe).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from common.errors import ConfigError
from train.config import FS_PLACES, KL_DIRECTIONS, PretrainConfig
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


class Burn(Method):
    data = "two_views"

    def __init__(self, student: ReActNetA, teacher: Teacher, classifier: nn.Module, *, temperature: float,
                 lam_schedule: str, lam_start: float, lam_end: float, fs: str, freeze_classifier: bool, fs_on: str,
                 kl_direction: str, teacher_bn: str):
        super().__init__()
        if fs_on not in FS_PLACES or kl_direction not in KL_DIRECTIONS:
            raise ConfigError(f"fs_on must be one of {FS_PLACES} and kl_direction one of {KL_DIRECTIONS}, got "
                              f"{fs_on!r}, {kl_direction!r}")
        self.student, self.teacher, self.classifier = student, teacher.freeze(), classifier
        self.teacher_bn, self.kl_direction = teacher_bn, kl_direction
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
                     fs_on=cfg.fs_on, kl_direction=cfg.kl_direction, teacher_bn=cfg.teacher_bn)
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
        fs_t, fs_s = (h, self.fs_projector(k)) if self.fs_on == "features" else (target, student)  # Eq. 4 / code
        lam = self.lam(step, total)
        parts = []
        for i, j in ((slice(0, n), slice(n, None)), (slice(n, None), slice(0, n))):  # student view i, target view j
            kl_args = (target[j], student[i]) if self.kl_direction == "target-student" else (student[i], target[j])
            parts.append(burn_loss(*kl_args, lam, self.temperature, self.fs, fs_t[j], fs_s[i]))
        return {"loss": (parts[0].total + parts[1].total) / 2, "kl": (parts[0].kl + parts[1].kl).detach() / 2,
                "fs": (parts[0].fs + parts[1].fs).detach() / 2, "lam": lam}

    def heads(self) -> dict[str, nn.Module]:
        heads = {"classifier": self.classifier}
        if isinstance(self.fs_projector, nn.Linear):
            heads["fs_projector"] = self.fs_projector
        return heads
