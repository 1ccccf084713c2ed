"""CMIM (Shang et al., ECCV 2022, "Network Binarization via Contrastive Learning") as a pile-up loss term.

A binary network holds, in one forward pass, the latent float activation a_F entering each binariser
and its binarised a_B = sign(a_F) (sign(0) = +1). CMIM maximises the mutual information between the
two with a contrastive task: after a small embedding, (a_B, a_F) of the *same* image is a positive
pair, (a_B, a_F) of different images are negatives. The term is added to any binary method's loss::

    L = L_method + alpha * mean over binarisers s of cmim_loss(e_B^s, e_F^s, negatives^s)

with, per binariser s (an :class:`~train.models.layers.RSign`), e_B = normalize(W_B pool(a_B)) and
e_F = normalize(W_F pool(a_F)): ``pool`` = adaptive average pooling to a g x g grid, flattened
((N, C, H, W) -> (N, C g^2)); W_B, W_F = two trainable linear maps to ``dim`` (the embedding heads,
saved in the checkpoint under ``heads["cmim"]`` and never exported). The loss itself is the pure
function :func:`train.losses.cmim_loss` (symmetric InfoNCE, temperature tau).

Negatives (``negatives``):

* ``"bank"``: a FIFO memory bank of the last K embeddings of each kind and binariser
  (:class:`~train.methods.teacher_ssl.KeyQueue`, the MoCo queue). Under DDP every process pushes the
  embeddings of *all* processes (all-gathered), so the banks stay identical on every rank.
* ``"batch"``: the other images of the (all-gathered, under DDP) batch; rows of the same image (BURN's
  second view) are neither positives nor negatives. The own process's rows keep their gradient.

The binarisers of a block are the ones its data flow names (``Block.presign_points``, the description
export and verification walk too); a_F and a_B are read there with forward hooks, registered only while
the wrapped method runs its training step (:meth:`ActivationTap.record`), so the student module itself is
never changed.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.errors import CheckpointError, ConfigError
from train.checkpoint import read_checkpoint
from train.config import PretrainConfig
from train.dist import all_gather_cat, gather_keep_local_grad, rank_and_world
from train.loader import batch_images
from train.losses import cmim_loss
from train.methods.common import Method
from train.methods.teacher_ssl import KeyQueue
from train.models import ReActNetA
from train.models.layers import RSign

NEGATIVES = ("bank", "batch")


def parse_blocks(spec: str, num_blocks: int) -> list[int]:
    """``"all"`` or comma-separated block indices (negative = from the end) -> sorted unique indices.

    ``parse_blocks("-1", 13) == [12]``; ``parse_blocks("0,-2", 13) == [0, 11]``.
    """
    if spec.strip() == "all":
        return list(range(num_blocks))
    out = set()
    for part in spec.split(","):
        try:
            i = int(part)
        except ValueError:
            raise ConfigError(f"--cmim-blocks: {part!r} is not a block index (use e.g. -1, 10,11,12 or all)") from None
        if not -num_blocks <= i < num_blocks:
            raise ConfigError(f"--cmim-blocks: block {i} does not exist (the network has {num_blocks} blocks)")
        out.add(i % num_blocks)
    return sorted(out)


def binariser_sites(student: nn.Module, blocks: list[int]) -> dict[str, RSign]:
    """The activation binarisers of the chosen blocks, as each block's own data flow lists them
    (``Block.presign_points``): {"blocks.i.rsign1": RSign, "blocks.i.rsign2": RSign, ...}."""
    if not isinstance(student, ReActNetA):
        raise ConfigError("--cmim-weight needs a binary student (ReActNet-A); the float teacher has no binarisers")
    return {f"blocks.{b}.{path}": student.blocks[b].get_submodule(path)
            for b in blocks for path, _ in student.blocks[b].presign_points()}


class ActivationTap:
    """Reads (a_F, a_B) at RSign modules through forward hooks that exist only inside :meth:`record`."""

    def __init__(self, sites: dict[str, RSign]):
        self.sites = sites

    @contextmanager
    def record(self):
        """Yield ``{site: [(a_F, a_B), ...]}``, one pair per forward call of that binariser while inside.

        a_F: (N, C, H, W) float pre-sign value x + b; a_B: its binarised value in {-1, +1}; both keep
        their autograd graph (a_B's gradient is the binariser's surrogate gradient).
        """
        rec: dict[str, list] = {name: [] for name in self.sites}

        def keep(name):
            return lambda mod, args, out: rec[name].append((mod.pre_sign(args[0]), out))

        handles = [m.register_forward_hook(keep(name)) for name, m in self.sites.items()]
        try:
            yield rec
        finally:
            for h in handles:
                h.remove()


def embedding_head(channels: int, dim: int, pool: int) -> nn.Sequential:
    """(N, C, H, W) -> (N, dim): adaptive average pool to pool x pool, flatten, Linear (not normalised here)."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(1), nn.Linear(channels * pool * pool, dim))


class CmimHeads(nn.Module):
    """Trainable embedding heads W_B, W_F per binariser, plus (bank mode) one queue per kind and binariser.

    Saved like every other head (``heads["cmim"]``); the exporters walk only the student, so none of
    this reaches ONNX or LCE.
    """

    def __init__(self, channels: dict[str, int], dim: int, pool: int, bank_size: int):
        super().__init__()
        keys = {name: name.replace(".", "_") for name in channels}
        self.keys = keys
        self.embed_b = nn.ModuleDict({keys[n]: embedding_head(c, dim, pool) for n, c in channels.items()})
        self.embed_f = nn.ModuleDict({keys[n]: embedding_head(c, dim, pool) for n, c in channels.items()})
        self.bank_b = nn.ModuleDict({keys[n]: KeyQueue(dim, bank_size) for n in channels}) if bank_size else None
        self.bank_f = nn.ModuleDict({keys[n]: KeyQueue(dim, bank_size) for n in channels}) if bank_size else None

    def embed(self, site: str, a_b: torch.Tensor, a_f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) x 2 -> L2-normalised float32 embeddings e_B, e_F, each (N, dim)."""
        k = self.keys[site]
        return (F.normalize(self.embed_b[k](a_b).float(), dim=1), F.normalize(self.embed_f[k](a_f).float(), dim=1))


def same_image_mask(rows: int, images: int, rank: int, world: int, device=None) -> torch.Tensor:
    """(rows, world*rows) bool: True where a gathered row shows the same image as a local row.

    The student sees each process's ``images`` images in blocks (view 1 of all images, then view 2...),
    so local row i shows image i % images; gathered row j comes from process j // rows.
    """
    local = torch.arange(rows, device=device)
    ids = rank * images + local % images  # (rows,) global image id of each local row
    every = torch.arange(world * rows, device=device)
    every_ids = (every // rows) * images + (every % rows) % images  # (world*rows,)
    return ids[:, None] == every_ids[None, :]


class WithCMIM(Method):
    """Any training method + alpha * CMIM on its binary student (see the module docstring).

    Looks like the wrapped method to the engine: ``network``, ``data``, ``heads()`` (the
    method's heads plus ``"cmim"``) and ``forward(batch, step, total) -> dict`` (``loss`` includes the
    term; ``cmim`` = the term, ``cmim_acc`` = fraction of binary anchors whose own float embedding is
    the most similar candidate, the "is the contrastive task being solved" signal).
    """

    def __init__(self, method: nn.Module, blocks: list[int], weight: float, dim: int = 128, temperature: float = 0.1,
                 negatives: str = "batch", bank_size: int = 4096, pool: int = 1):
        super().__init__()
        if negatives not in NEGATIVES:
            raise ConfigError(f"--cmim-negatives must be one of {NEGATIVES}, got {negatives!r}")
        if weight <= 0 or dim < 1 or pool < 1 or temperature <= 0 or (negatives == "bank" and bank_size < 1):
            raise ConfigError("CMIM needs weight > 0, dim >= 1, pool >= 1, temperature > 0 and (bank) bank size >= 1")
        self.method = method
        self.tap = ActivationTap(binariser_sites(method.student, blocks))
        channels = {name: m.bias.shape[1] for name, m in self.tap.sites.items()}
        self.cmim = CmimHeads(channels, dim, pool, bank_size if negatives == "bank" else 0)
        self.weight, self.temperature, self.negatives = weight, temperature, negatives

    @classmethod
    def from_config(cls, method: nn.Module, cfg: PretrainConfig) -> "WithCMIM":
        network = method.network
        if not isinstance(network, ReActNetA):
            raise ConfigError("--cmim-weight needs a binary student; --method teacher trains a float network")
        wrapped = cls(method, parse_blocks(cfg.cmim_blocks, network.cfg.num_blocks), cfg.cmim_weight, cfg.cmim_dim,
                      cfg.cmim_temperature, cfg.cmim_negatives, cfg.cmim_bank, cfg.cmim_pool)
        if cfg.init:
            wrapped.load_init_heads(cfg.init)
        return wrapped

    def load_init_heads(self, path: str) -> None:
        """Stage 2: continue the stage-1 run's CMIM heads (and bank) when it had the same CMIM shape."""
        sd = (read_checkpoint(path).get("heads") or {}).get("cmim")
        if sd is None:
            return  # stage 1 ran without CMIM: fresh heads
        try:
            self.cmim.load_state_dict(sd)
        except RuntimeError as e:
            raise CheckpointError(f"--init {path}: its CMIM heads differ from this run's --cmim-* options: "
                                  f"{str(e)[:200]}") from None

    # --- the engine's view of a method (train.methods.common.Method)
    @property
    def student(self) -> nn.Module:
        return self.method.student

    @property
    def network(self) -> nn.Module:
        return self.method.network

    @property
    def data(self) -> str:
        return self.method.data

    def heads(self) -> dict[str, nn.Module]:
        return {**self.method.heads(), "cmim": self.cmim}

    def forward(self, batch, step: int, total: int) -> dict:
        with self.tap.record() as rec:
            res = dict(self.method(batch, step, total))
        term, acc = self.term(rec, batch_images(batch, self.data))
        res["loss"] = res["loss"] + self.weight * term
        res["cmim"], res["cmim_acc"] = term.detach(), acc
        return res

    def term(self, rec: dict[str, list], images: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean over binarisers of :func:`cmim_loss`, and the contrastive top-1 accuracy (no gradient)."""
        rank, world = rank_and_world()
        losses, accs = [], []
        for site, pairs in rec.items():
            if not pairs:
                raise RuntimeError(f"CMIM: binariser {site} did not run in this training step")
            a_f = torch.cat([p[0] for p in pairs])  # (R, C, H, W)
            a_b = torch.cat([p[1] for p in pairs])
            e_b, e_f = self.cmim.embed(site, a_b, a_f)  # (R, D) each
            k = self.cmim.keys[site]
            if self.negatives == "bank":
                neg_b, neg_f, mask = self.cmim.bank_b[k].keys.clone(), self.cmim.bank_f[k].keys.clone(), None
            else:
                neg_b, neg_f = gather_keep_local_grad(e_b), gather_keep_local_grad(e_f)  # (world*R, D)
                mask = same_image_mask(len(e_b), images, rank, world, e_b.device)
            losses.append(cmim_loss(e_b, e_f, neg_b, neg_f, self.temperature, mask))
            with torch.no_grad():
                pos = (e_b * e_f).sum(1)  # (R,)
                neg = e_b @ neg_f.T
                if mask is not None:
                    neg = neg.masked_fill(mask, float("-inf"))
                accs.append((pos > neg.max(1).values).float().mean())
            if self.negatives == "bank":
                self.cmim.bank_b[k].push(all_gather_cat(e_b.detach()))
                self.cmim.bank_f[k].push(all_gather_cat(e_f.detach()))
        return torch.stack(losses).mean(), torch.stack(accs).mean()


def with_cmim(method: nn.Module, cfg: PretrainConfig) -> nn.Module:
    """``method`` unchanged when ``cfg.cmim_weight == 0``, else wrapped in :class:`WithCMIM`."""
    return WithCMIM.from_config(method, cfg) if cfg.cmim_weight > 0 else method
