"""Tiny, seeded building blocks for the training tests (a teacher checkpoint, a tiny config)."""

from __future__ import annotations

import torch
import torch.nn as nn

from train.checkpoint import save_checkpoint
from train.config import resolve_config
from train.methods.teacher_ssl import mlp_projector
from train.models import build_teacher


def write_teacher_checkpoint(path, arch: str = "resnet18", seed: int = 0, num_classes: int = 10, dim: int = 16):
    """A random float teacher saved as a burn-edge teacher checkpoint with both pretrained heads."""
    torch.manual_seed(seed)
    t = build_teacher(arch, frozen=False)
    heads = {"projector": mlp_projector(t.feature_dim, dim).state_dict(),
             "classifier": nn.Linear(t.feature_dim, num_classes).state_dict()}
    return save_checkpoint(path, {"kind": "teacher", "teacher_arch": {"arch": arch, "small_input": False},
                                  "model": t.state_dict(), "heads": heads})


def tiny_config(out, teacher=None, **kw):
    """A few-second config: 2-block width-0.25 ReActNet on a slice of digits, resnet18 teacher."""
    base = dict(dataset="digits", width=0.25, num_blocks=2, head_hidden=32, head_dim=16, teacher_arch="resnet18",
                teacher_checkpoint=str(teacher) if teacher else None, batch_size=16, epochs=1, lr=1e-3,
                warmup_epochs=0.5, limit_train=64, log_every=1, out=str(out), moco_k=64, moco_dim=16)
    base.update(kw)
    return resolve_config(None, **base)
