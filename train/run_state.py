"""What a run checkpoint holds, written at save and read back at ``--resume``.

A run checkpoint is a model checkpoint (readable by export and evaluation) plus the training extras::

    ReActNet student:  {"kind": "reactnet", "arch", "model", ...}   (train.checkpoint.reactnet_payload)
    float teacher:     {"kind": "teacher", "teacher_arch", "model", "teacher_objective", ...}
    both:              {"method", "stage", "config", "heads": {name: state_dict},
                        "optimizer", "scheduler", "scaler", "step", "epoch", "total_steps", "rng"}

``method.network`` is saved as ``"model"``; frozen parts (the teacher, a frozen target head) are not
saved: they are rebuilt from the teacher checkpoint named in the config.
"""

from __future__ import annotations

from dataclasses import asdict

import torch.nn as nn

from common.errors import CheckpointError
from train.checkpoint import reactnet_payload
from train.config import PretrainConfig
from train.models import ReActNetA


def checkpoint_payload(method: nn.Module, cfg: PretrainConfig, **extra) -> dict:
    """Self-describing checkpoint: ReActNet students via ``reactnet_payload`` (readable by
    ``model_from_checkpoint``), float teachers as ``{"kind": "teacher", "teacher_arch", "model"}``
    (readable by ``build_teacher``); plus method, stage, heads, config and ``extra``."""
    network = method.network
    common = dict(method=cfg.method, stage=cfg.stage, config=cfg.to_dict(),
                  heads={name: m.state_dict() for name, m in method.heads().items()}, **extra)
    if isinstance(network, ReActNetA):
        return reactnet_payload(network, **common)
    return {"kind": "teacher", "teacher_arch": asdict(network.cfg), "model": network.state_dict(),
            "teacher_objective": cfg.teacher_objective, **common}


def load_training_state(method: nn.Module, ckpt: dict, cfg: PretrainConfig) -> None:
    """Restore the network and heads of ``method`` from a run checkpoint (for --resume)."""
    if ckpt.get("method") != cfg.method:
        raise CheckpointError(f"--resume: checkpoint was written by method {ckpt.get('method')!r}, "
                              f"this run is {cfg.method!r}")
    try:
        method.network.load_state_dict(ckpt["model"])
        for name, module in method.heads().items():
            module.load_state_dict(ckpt["heads"][name])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"--resume: checkpoint does not match this run's architecture: {str(e)[:300]}") from None
