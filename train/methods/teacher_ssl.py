"""MoCo-v2-style self-supervised pretraining of the float teacher h_zeta (He et al. 2020; Chen et al. 2020).

So that BURN runs end to end with no downloaded weights: query encoder (the future teacher, a
torchvision ResNet) + MLP projector; momentum key encoder + projector; a queue of negatives; InfoNCE
with temperature T, symmetrised over the two views. Differences from the reference MoCo-v2: the loss is
symmetric (both views serve as query), and there is no shuffle-BN (single-process runs cannot leak
through BN across GPUs; under DDP each process normalises its own shard).

The checkpoint is a teacher checkpoint (``kind="teacher"``) that :func:`train.models.build_teacher`
reads; its ``heads["projector"]`` is the pretrained head the S2-BNN baseline distils from.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.config import PretrainConfig
from train.dist import all_gather_cat
from train.losses import info_nce
from train.methods.common import Method, split_views
from train.models import Teacher, TeacherConfig


class KeyQueue(nn.Module):
    """(K, D) ring buffer of L2-normalised keys; a module so that it lands in the checkpoint.

    ``replicated``: under DDP every process pushes the all-gathered keys, so the queue must be identical
    on every process (checked at the end of a run with the parameters).
    """

    replicated = True

    def __init__(self, dim: int, size: int):
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, k: torch.Tensor) -> None:
        """Overwrite the oldest len(k) entries (wrapping around). k: (N, D)."""
        k = k[-len(self.keys):]
        idx = (self.ptr + torch.arange(len(k), device=k.device)) % len(self.keys)
        self.keys[idx] = k.to(self.keys.dtype)
        self.ptr.copy_((self.ptr + len(k)) % len(self.keys))


@torch.no_grad()
def view_gap(feats: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """How view-invariant the features of one two-view batch are.

    feats: (2N, C), rows [0, N) view 1 and [N, 2N) view 2 of the same N images. Returns ``view_cos`` =
    mean_i cos(f1_i, f2_i), ``other_cos`` = mean_{i != j} cos(f1_i, f2_j) and ``view_gap`` = their
    difference (0 for features that ignore the image, up to 2).
    """
    f = F.normalize(feats.float(), dim=1)
    sim = f[:n] @ f[n:].T  # (N, N), diagonal = two views of one image
    same = sim.diagonal().mean()
    other = (sim.sum() - sim.diagonal().sum()) / max(1, n * (n - 1))
    return {"view_cos": same, "other_cos": other, "view_gap": same - other}


def mlp_projector(in_dim: int, out_dim: int) -> nn.Sequential:
    """MoCo-v2 head: Linear(in, in) - ReLU - Linear(in, out); keys 0.* and 2.* as in MoCo checkpoints."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


class MoCoTeacher(Method):
    data = "two_views"

    def __init__(self, encoder: Teacher, dim: int = 128, queue_size: int = 65536, momentum: float = 0.999,
                 temperature: float = 0.2):
        super().__init__()
        self.encoder = encoder  # the query encoder: what the checkpoint exports as the teacher
        self.projector = mlp_projector(encoder.feature_dim, dim)
        # Plain copies (not Teacher wrappers) so they keep train-mode BN like the query encoder.
        self.key_encoder = copy.deepcopy(encoder.net).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.queue = KeyQueue(dim, queue_size)
        self.momentum, self.temperature = momentum, temperature

    @property
    def network(self) -> Teacher:
        return self.encoder

    @classmethod
    def from_config(cls, cfg: PretrainConfig) -> "MoCoTeacher":
        enc = Teacher(TeacherConfig(cfg.teacher_arch, cfg.teacher_small_input))
        return cls(enc, cfg.moco_dim, cfg.moco_k, cfg.moco_m, cfg.temperature)

    @torch.no_grad()
    def _momentum_update(self) -> None:
        pairs = [(self.encoder.net, self.key_encoder), (self.projector, self.key_projector)]
        for q_mod, k_mod in pairs:
            for pq, pk in zip(q_mod.parameters(), k_mod.parameters()):
                pk.mul_(self.momentum).add_(pq.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """(M, 3, S, S) -> (M, D) L2-normalised momentum-encoder keys."""
        return F.normalize(self.key_projector(self.key_encoder(x)), dim=1)

    def forward(self, batch, step: int, total: int) -> dict:
        v1, v2 = split_views(batch)
        feats = self.encoder(torch.cat([v1, v2]))  # (2N, C) h(x), the features the teacher is kept for
        q = F.normalize(self.projector(feats), dim=1)  # (2N, D)
        self._momentum_update()
        k = self.keys(torch.cat([v2, v1]))  # (2N, D): row i is the positive of query row i
        loss = info_nce(q, k, self.queue.keys.clone(), self.temperature)
        self.queue.push(all_gather_cat(k))
        return {"loss": loss, "loss_vs_chance": loss.detach() / math.log(len(self.queue.keys) + 1),
                **view_gap(feats.detach(), len(v1))}

    def heads(self) -> dict[str, nn.Module]:
        return {"projector": self.projector, "key_encoder": self.key_encoder,
                "key_projector": self.key_projector, "queue": self.queue}
