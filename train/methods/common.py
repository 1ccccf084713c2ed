"""Pieces the methods share: building the binary student, the teacher and its heads, and stage-2 init."""

from __future__ import annotations

import torch
import torch.nn as nn

from common.errors import CheckpointError, ConfigError
from train.checkpoint import check_model_values, read_checkpoint
from train.config import PretrainConfig
from train.data import dataset_info
from train.models import ReActNetA, Teacher, build_teacher, reactnet_a
from train.models.layers import BinaryConv2d
from train.models.reactnet import build_head, init_convs_


def build_student(cfg: PretrainConfig, num_classes: int, head_hidden: int | None = None) -> ReActNetA:
    """k_phi + l_phi: ReActNet-A at the data set's resolution; stage 2 = binary weights. Convolutions
    initialised per ``cfg.conv_init``; binary weights get the ``cfg.weight_grad`` straight-through."""
    student = reactnet_a(width=cfg.width, input_size=dataset_info(cfg.dataset).input_size, num_classes=num_classes,
                         binary_weights=cfg.stage == 2, padding=cfg.padding, act_grad=cfg.act_grad,
                         num_blocks=cfg.num_blocks, feature_mlp=cfg.feature_mlp,
                         head_hidden=cfg.head_hidden if head_hidden is None else head_hidden)
    init_convs_(student, cfg.conv_init)
    for m in student.modules():
        if isinstance(m, BinaryConv2d):
            m.weight_grad = cfg.weight_grad
    return student


def require_teacher(cfg: PretrainConfig) -> Teacher:
    """The frozen float feature extractor h_zeta from ``cfg.teacher_checkpoint`` (required)."""
    if not cfg.teacher_checkpoint:
        raise CheckpointError(
            f"--method {cfg.method} needs a pretrained teacher: pass --teacher-checkpoint PATH (a MoCo-v2 / "
            f"torchvision ResNet checkpoint, or train one with `python -m train.pretrain --method teacher "
            f"--preset digits-tiny --out runs/teacher`)")
    return build_teacher(cfg.teacher_arch, cfg.teacher_checkpoint, small_input=cfg.teacher_small_input)


def load_teacher_head(path: str, name: str) -> nn.Module:
    """A frozen head stored with a teacher: ``"projector"`` (MoCo MLP) or ``"classifier"`` (supervised fc).

    burn-edge teacher checkpoints keep heads under ``ckpt["heads"][name]``; for official MoCo-v2
    checkpoints the projector is ``encoder_q.fc.{0,2}``.
    """
    ckpt = read_checkpoint(path)
    sd = (ckpt.get("heads") or {}).get(name)
    if sd is None and name == "projector":
        raw = ckpt.get("state_dict", ckpt)
        sd = {k.split("encoder_q.fc.", 1)[1]: v for k, v in raw.items() if "encoder_q.fc." in k}
        if not any(k.startswith("2.") for k in sd):
            sd = None
    if sd is None:
        raise CheckpointError(f"teacher checkpoint {path} has no pretrained {name!r} head; train the teacher with "
                              f"--teacher-objective {'moco' if name == 'projector' else 'supervised'}")
    if "2.weight" in sd:  # Linear - ReLU - Linear (MoCo v2 MLP)
        head = nn.Sequential(nn.Linear(sd["0.weight"].shape[1], sd["0.weight"].shape[0]), nn.ReLU(),
                             nn.Linear(sd["2.weight"].shape[1], sd["2.weight"].shape[0]))
    else:
        head = nn.Linear(sd["weight"].shape[1], sd["weight"].shape[0])
    head.load_state_dict(sd)
    head.eval().requires_grad_(False)
    return head


def kaiming_init_(module: nn.Module) -> nn.Module:
    """The official BURN head init (mmcv ``kaiming_init``): Linear weights ~ N(0, 2 / fan_in), biases 0;
    BatchNorm weight 1, bias 0. In place; returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def random_classifier(in_features: int, cfg: PretrainConfig) -> nn.Module:
    """g_theta: randomly initialised MLP head (official: Linear-BN-ReLU-Linear, 2000 hidden, 2000 out,
    kaiming-normal init)."""
    return kaiming_init_(build_head(in_features, cfg.head_dim, cfg.head_hidden))


def load_init(path: str, student: ReActNetA, heads: dict[str, nn.Module], method: str) -> None:
    """Initialise ``student`` (and ``heads``, by name) from a previous stage's checkpoint.

    The architecture must match apart from ``binary_weights`` (stage 1 -> stage 2).
    """
    ckpt = read_checkpoint(path)
    if ckpt.get("kind") != "reactnet":
        raise CheckpointError(f"--init {path}: expected a ReActNet checkpoint from an earlier stage, "
                              f"got kind={ckpt.get('kind')!r}")
    stored = dict(ckpt["arch"], binary_weights=None)
    wanted = dict(student.cfg.to_dict(), binary_weights=None)
    if stored != wanted:
        diff = {k: (stored.get(k), wanted.get(k)) for k in wanted if stored.get(k) != wanted.get(k)}
        raise CheckpointError(f"--init {path}: wrong architecture, (checkpoint, requested) differ in {diff}")
    student.load_state_dict(ckpt["model"])
    check_model_values(student, path)  # the one validity check every loaded checkpoint passes
    for name, module in heads.items():
        sd = (ckpt.get("heads") or {}).get(name)
        if sd is None:
            raise CheckpointError(f"--init {path} has no {name!r} head (written by method "
                                  f"{ckpt.get('method')!r}, this run is {method!r})")
        module.load_state_dict(sd)
        check_model_values(module, f"{path} (head {name!r})")


def split_views(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """A two-view batch ``((v1, v2), labels)`` -> (v1, v2), each (N, 3, S, S)."""
    views = batch[0]
    if not isinstance(views, (tuple, list)) or len(views) != 2:
        raise ConfigError("this method needs two augmented views per image (TwoViews transform)")
    return views[0], views[1]


class Method(nn.Module):
    """What the engine needs of a training method (see :mod:`train.methods`).

    ``data``: ``"two_views"`` or ``"supervised"``; ``network``: the module saved as the checkpoint's
    ``"model"`` (the binary student by default); ``heads()``: other trained state saved under ``"heads"``.
    """

    data = "two_views"

    @property
    def network(self) -> nn.Module:
        return self.student

    def heads(self) -> dict[str, nn.Module]:
        return {}


class FrozenTargetDistiller(Method):
    """Base of the KL-only baselines (S2-BNN, supervised-KL): a binary student distils a frozen target
    ``teacher_head(teacher(x))``; nothing on the target side learns and no head is saved."""

    def __init__(self, student: ReActNetA, teacher: Teacher, teacher_head: nn.Module, temperature: float):
        super().__init__()
        self.student, self.teacher, self.teacher_head = student, teacher.freeze(), teacher_head
        self.teacher_head.eval().requires_grad_(False)
        self.temperature = temperature

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher_head.eval()
        return self

    @torch.no_grad()
    def target(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen head(h(x)): (N, 3, S, S) -> (N, D)."""
        return self.teacher_head(self.teacher(x))
