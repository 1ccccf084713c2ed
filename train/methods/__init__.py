"""Training methods, one small ``nn.Module`` each, chosen by ``--method`` through :data:`METHODS`.

Every method has:

* ``network``: the network being trained and saved as the checkpoint's ``"model"`` (the binary
  student ReActNet-A, or the float encoder for ``--method teacher``);
* ``forward(batch, step, total) -> dict`` with a scalar ``"loss"`` tensor plus logged scalars;
* ``heads() -> {name: module}``: other trained state saved under ``"heads"`` (BURN's classifier g,
  MoCo's projector / key encoder / queue) and restored by ``--resume`` and ``--init``;
* ``data``: ``"two_views"`` (self-supervised) or ``"supervised"`` (one view + labels).
"""

from __future__ import annotations

from common.errors import ConfigError
from train.config import PretrainConfig
from train.methods.burn import Burn
from train.methods.cmim import with_cmim
from train.methods.s2bnn import S2BNN
from train.methods.supervised import Supervised
from train.methods.supervised_kl import SupervisedKL
from train.methods.teacher_ssl import MoCoTeacher

METHODS = {"burn": Burn, "s2bnn": S2BNN, "supervised-kl": SupervisedKL, "supervised": Supervised,
           "teacher": MoCoTeacher}


def build_method(cfg: PretrainConfig):
    """Build the method module named by ``cfg.method`` (teacher: MoCo or supervised objective)."""
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; choose one of {sorted(METHODS)}")
    if cfg.method == "teacher" and cfg.teacher_objective == "supervised":
        return Supervised.teacher_from_config(cfg)
    return with_cmim(METHODS[cfg.method].from_config(cfg), cfg)  # + alpha * CMIM when --cmim-weight > 0


__all__ = ["METHODS", "build_method", "Burn", "S2BNN", "SupervisedKL", "Supervised", "MoCoTeacher"]
