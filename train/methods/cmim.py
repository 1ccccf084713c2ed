"""CMIM (Shang et al., ECCV 2022, "Network Binarization via Contrastive Learning") as a pile-up loss term.

A binary network holds, in one forward pass, the latent float activation a_F entering each binariser
and its binarised a_B = sign(a_F) (sign(0) = +1). CMIM maximises the mutual information between the
two with a contrastive task between embeddings of a_B and a_F. The term is added to any binary
method's loss::

    L = L_method + alpha * mean over binarisers s of L_s

Per binariser s (an :class:`~train.models.layers.RSign`): ``pool`` = adaptive average pooling to a
g x g grid, flattened ((N, C, H, W) -> (N, C g^2)); e_B = normalize(W_B pool(a_B)) and
e_F = normalize(W_F pool(a_F)), each (R, dim).

Two variants (``--cmim-variant``):

* ``"memory"`` (default; the public code, github.com/42Shawn/CMIM, read for facts): W_B, W_F are
  **fixed random** linear maps (not in the optimizer). One memory per kind holds an L2-normalised
  entry per *training image* (:class:`SampleMemory`, indexed by the loader's sample index). For a
  sample i the **positive** of the binary anchor e_B is the float memory's entry i, written at the
  sample's *previous* visit (momentum ``m`` = 0.5, detached), and its K **negatives** are float-memory
  entries of K other samples drawn at random (``--cmim-bank``, public 4096): of *other classes* when the
  method trains with labels (the public code), of any other sample when it does not (label-free BURN
  cannot know classes). Symmetrically for the float anchor e_F against the binary memory. The loss is
  CRD's NCE form (:func:`nce_loss`) with the partition constant Z estimated once, at the first step;
  L_s = NCE(binary anchor) + NCE(float anchor) (summed, as the public code). After the loss, each
  visited entry is updated: mem_i <- normalize(m mem_i + (1 - m) e_i) (:func:`momentum_write`).
* ``"inbatch"`` (this project's earlier variant): W_B, W_F trainable; the positive of e_B is the live
  e_F of the same image from the same forward pass, the negatives the other images of the
  (all-gathered, under DDP) batch; rows of the same image (BURN's second view) are neither positives
  nor negatives; L_s = symmetric InfoNCE (:func:`train.losses.cmim_loss`).

Heads and memories are saved under ``heads["cmim"]`` (never exported). The binarisers of a block are
the ones its data flow names (``Block.presign_points``); a_F and a_B are read there with forward hooks
registered only while the wrapped method runs its training step (:meth:`ActivationTap.record`).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.errors import CheckpointError, ConfigError
from train.checkpoint import read_checkpoint
from train.config import CMIM_VARIANTS, PretrainConfig, cmim_class_aware
from train.dist import all_gather_cat, all_reduce_mean, gather_keep_local_grad, rank_and_world
from train.loader import batch_images, training_labels, training_set
from train.losses import cmim_loss
from train.methods.common import Method
from train.models import ReActNetA
from train.models.layers import RSign


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


# ------------------------------------------------------------------ the memory variant's pure pieces


def negatives_from_uniform(u: torch.Tensor, idx: torch.Tensor, order: torch.Tensor, lo: torch.Tensor,
                           count: torch.Tensor) -> torch.Tensor:
    """Map uniform draws to negative sample indices, uniformly over the samples allowed for each row.

    u: (N, K) in [0, 1); idx: (N,) sample index of each row. Sample i may not draw the ``count[i]``
    samples ``order[lo[i] : lo[i] + count[i]]`` (its own class when class-aware, else itself); every
    other sample has probability 1 / (n - count[i]) per draw (with replacement). Returns (N, K) long.

    With ``order = arange(n)``, ``lo = arange(n)``, ``count = ones(n)``: any sample but i itself.
    """
    n = len(order)
    lo_r, cnt_r = lo[idx][:, None], count[idx][:, None]  # (N, 1)
    pos = (u * (n - cnt_r)).long().clamp_max(n - cnt_r - 1)  # (N, K) position among the allowed
    pos = torch.where(pos >= lo_r, pos + cnt_r, pos)  # skip the excluded block
    return order[pos]


def momentum_write(memory: torch.Tensor, idx: torch.Tensor, e: torch.Tensor, momentum: float) -> None:
    """In place: memory[i] <- normalize(m memory[i] + (1 - m) mean of the rows of e with index i).

    memory: (n, D); idx: (R,) long, may repeat (two views, or the same sample on two processes):
    repeated rows are averaged first, so the write is one update per visited sample. e: (R, D), detached.
    """
    uniq, inv = torch.unique(idx, return_inverse=True)
    mean = torch.zeros(len(uniq), e.shape[1], dtype=e.dtype, device=e.device).index_add_(0, inv, e)
    mean /= torch.bincount(inv, minlength=len(uniq)).to(e.dtype)[:, None]
    memory[uniq] = F.normalize(momentum * memory[uniq] + (1 - momentum) * mean.to(memory.dtype), dim=1)


def nce_loss(p: torch.Tensor, n_data: int, eps: float = 1e-7) -> torch.Tensor:
    """CRD's NCE loss (Tian et al. 2020, Eq. 18; the public CMIM's criterion), summed over candidates.

    p: (R, 1 + K) scores exp(s / tau) / Z of the positive (column 0) and K negatives; n_data = M, the
    training-set size (the noise distribution is uniform, 1/M). With c = K / M::

        loss = -(1/R) sum_r [ log(p_r0 / (p_r0 + c + eps)) + sum_k log(c / (p_rk + c + eps)) ]
    """
    k = p.shape[1] - 1
    c = k / float(n_data)
    log_pos = torch.log(p[:, 0] / (p[:, 0] + c + eps))
    log_neg = torch.log(c / (p[:, 1:] + c + eps))
    return -(log_pos.sum() + log_neg.sum()) / len(p)


class SampleMemory(nn.Module):
    """(n, D) memory with one entry per training image (public init: uniform in +-1/sqrt(D/3)), and
    the NCE partition constant Z of the anchors that read it (NaN until the first step sets it).

    ``replicated``: under DDP every process writes the all-gathered embeddings, so the memory must be
    identical on every process (checked at the end of a run with the parameters).
    """

    replicated = True

    def __init__(self, n: int, dim: int):
        super().__init__()
        bound = 1.0 / (dim / 3) ** 0.5
        self.register_buffer("entries", torch.rand(n, dim) * 2 * bound - bound)
        self.register_buffer("z", torch.full((), float("nan")))


class NegativeSampler(nn.Module):
    """Draws K negatives per sample: of other classes (``labels`` given) or any other sample.

    Buffers derived from the labels (not saved): ``order`` (n,), ``lo`` (n,), ``count`` (n,) as
    :func:`negatives_from_uniform` reads them. The draws come from a generator seeded by (``seed``,
    calls so far, rank), the call counter ``draws`` being saved: a resumed run draws what the
    uninterrupted run drew, whatever else consumed the global RNG in between."""

    def __init__(self, n: int, labels: list[int] | None, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))
        if labels is None:
            order, lo, count = torch.arange(n), torch.arange(n), torch.ones(n, dtype=torch.long)
        else:
            y = torch.as_tensor(labels, dtype=torch.long)
            order = torch.argsort(y, stable=True)
            classes, count_c = torch.unique(y, return_counts=True)
            first = torch.cumsum(count_c, 0) - count_c  # position of each class's first sample in order
            slot = torch.searchsorted(classes, y)
            lo, count = first[slot], count_c[slot]
            if int(count.max()) >= n:
                raise ConfigError("class-aware CMIM negatives need at least two classes in the training set")
        if n < 2:
            raise ConfigError("CMIM's memory variant needs at least two training images")
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("lo", lo, persistent=False)
        self.register_buffer("count", count, persistent=False)

    def forward(self, idx: torch.Tensor, k: int) -> torch.Tensor:
        """(N,) sample indices -> (N, K) negative sample indices (uniform, with replacement)."""
        rank, world = rank_and_world()
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + int(self.draws)) * world + rank)
        self.draws += 1
        u = torch.rand(len(idx), k, generator=g).to(idx.device)
        return negatives_from_uniform(u, idx, self.order, self.lo, self.count)


def embedding_head(channels: int, dim: int, pool: int) -> nn.Sequential:
    """(N, C, H, W) -> (N, dim): adaptive average pool to pool x pool, flatten, Linear (not normalised here)."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(1), nn.Linear(channels * pool * pool, dim))


class CmimHeads(nn.Module):
    """Embedding heads W_B, W_F per binariser (fixed in the memory variant), plus (memory variant) one
    :class:`SampleMemory` per kind and binariser. Saved like every other head (``heads["cmim"]``)."""

    def __init__(self, channels: dict[str, int], dim: int, pool: int, n_data: int = 0, trainable: bool = True,
                 labels: list[int] | None = None, seed: int = 0):
        super().__init__()
        keys = {name: name.replace(".", "_") for name in channels}
        self.keys = keys
        self.embed_b = nn.ModuleDict({keys[n]: embedding_head(c, dim, pool) for n, c in channels.items()})
        self.embed_f = nn.ModuleDict({keys[n]: embedding_head(c, dim, pool) for n, c in channels.items()})
        if not trainable:
            self.embed_b.requires_grad_(False)
            self.embed_f.requires_grad_(False)
        self.memory_b = nn.ModuleDict({keys[n]: SampleMemory(n_data, dim) for n in channels}) if n_data else None
        self.memory_f = nn.ModuleDict({keys[n]: SampleMemory(n_data, dim) for n in channels}) if n_data else None
        self.sampler = NegativeSampler(n_data, labels, seed) if n_data else None

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
    term; ``cmim`` = the term, ``cmim_acc`` = fraction of binary anchors whose positive scores above
    every negative, the "is the contrastive task being solved" signal).

    ``labels`` (memory variant): the training set's label per sample index for class-aware negatives,
    or None (any other sample is a negative); ``n_data``: the training-set size.
    """

    def __init__(self, method: nn.Module, blocks: list[int], weight: float, *, variant: str, dim: int,
                 temperature: float, pool: int, negatives: int, momentum: float, n_data: int = 0,
                 labels: list[int] | None = None, seed: int = 0):
        super().__init__()
        if variant not in CMIM_VARIANTS:
            raise ConfigError(f"--cmim-variant must be one of {CMIM_VARIANTS}, got {variant!r}")
        if weight <= 0 or dim < 1 or pool < 1 or temperature <= 0 or negatives < 1 or not 0 <= momentum < 1:
            raise ConfigError("CMIM needs weight > 0, dim >= 1, pool >= 1, temperature > 0, negatives >= 1 and "
                              "0 <= momentum < 1")
        memory = variant == "memory"
        if memory and (n_data < 2 or (labels is not None and len(labels) != n_data)):
            raise ConfigError(f"CMIM's memory variant needs the training-set size (>= 2) and, class-aware, one "
                              f"label per image; got n_data={n_data}")
        self.method = method
        self.tap = ActivationTap(binariser_sites(method.student, blocks))
        channels = {name: m.bias.shape[1] for name, m in self.tap.sites.items()}
        self.cmim = CmimHeads(channels, dim, pool, n_data if memory else 0, trainable=not memory, labels=labels,
                              seed=seed)
        self.variant, self.weight, self.temperature = variant, weight, temperature
        self.negatives, self.momentum, self.n_data, self.class_aware = negatives, momentum, n_data, labels is not None

    @classmethod
    def from_config(cls, method: nn.Module, cfg: PretrainConfig, n_data: int | None = None) -> "WithCMIM":
        """The term ``cfg`` names around ``method``. The memory variant reads the training set's size and
        labels (no image is decoded); ``n_data`` (benchmarks) is a stand-in size instead, label-free."""
        network = method.network
        if not isinstance(network, ReActNetA):
            raise ConfigError("--cmim-weight needs a binary student; --method teacher trains a float network")
        labels = None
        if cfg.cmim_variant == "memory" and n_data is None:
            all_labels = training_labels(cfg)
            n_data = len(training_set(cfg)) if all_labels is None else len(all_labels)
            if cmim_class_aware(cfg):
                if all_labels is None:
                    raise ConfigError(f"--cmim-class-aware on: the {cfg.dataset} training set has no labels")
                labels = all_labels
        wrapped = cls(method, parse_blocks(cfg.cmim_blocks, network.cfg.num_blocks), cfg.cmim_weight,
                      variant=cfg.cmim_variant, dim=cfg.cmim_dim, temperature=cfg.cmim_temperature,
                      pool=cfg.cmim_pool, negatives=cfg.cmim_bank, momentum=cfg.cmim_momentum, n_data=n_data or 0,
                      labels=labels, seed=cfg.seed)
        if cfg.init:
            wrapped.load_init_heads(cfg.init)
        return wrapped

    def load_init_heads(self, path: str) -> None:
        """Stage 2: continue the stage-1 run's CMIM heads (and memories) when it had the same CMIM shape."""
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
        if self.variant == "memory":
            if len(batch) < 3:
                raise ConfigError("CMIM's memory variant needs the sample index of every image: batches "
                                  "(views or images, labels, indices) as train.loader builds them")
            term, acc = self.memory_term(rec, batch[2])
        else:
            term, acc = self.inbatch_term(rec, batch_images(batch, self.data))
        res["loss"] = res["loss"] + self.weight * term
        res["cmim"], res["cmim_acc"] = term.detach(), acc
        return res

    @staticmethod
    def _site_embeddings(rec: dict[str, list]):
        for site, pairs in rec.items():
            if not pairs:
                raise RuntimeError(f"CMIM: binariser {site} did not run in this training step")
            yield site, torch.cat([p[1] for p in pairs]), torch.cat([p[0] for p in pairs])  # a_B, a_F (R, C, H, W)

    def memory_term(self, rec: dict[str, list], idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The public CMIM: positives and negatives from the per-sample memories (module docstring).

        idx: (N,) sample indices of this process's images; the student's R rows are V views of them in
        blocks (row r shows image r % N)."""
        idx = idx.to(self.cmim.sampler.order.device).long()
        cand = torch.cat([idx[:, None], self.cmim.sampler(idx, self.negatives)], dim=1)  # (N, 1+K): positive first
        losses, accs = [], []
        for site, a_b, a_f in self._site_embeddings(rec):
            e_b, e_f = self.cmim.embed(site, a_b, a_f)  # (R, D) each, R = V * N
            loss, acc = self.memory_site(self.cmim.keys[site], e_b, e_f, idx, cand)
            losses.append(loss)
            accs.append(acc)
        return torch.stack(losses).mean(), torch.stack(accs).mean()

    def memory_site(self, key: str, e_b: torch.Tensor, e_f: torch.Tensor, idx: torch.Tensor,
                    cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One binariser: L_s = NCE(e_B vs float memory[cand]) + NCE(e_F vs binary memory[cand]), the
        binary anchors' accuracy, then (training) the momentum write of e_B, e_F at ``idx``.

        e_b, e_f: (V*N, D) L2-normalised; idx: (N,); cand: (N, 1+K) sample indices, column 0 = idx
        (the positive: the other branch's entry from the sample's previous visit), then the negatives.
        """
        n = len(idx)
        views = len(e_b) // n
        mem_b, mem_f = self.cmim.memory_b[key], self.cmim.memory_f[key]
        scores = []
        for anchor, other in ((e_b, mem_f), (e_f, mem_b)):  # binary anchor vs float memory, and back
            w = other.entries[cand]  # (N, 1+K, D), a buffer: no gradient
            s = torch.einsum("vnd,nkd->vnk", anchor.view(views, n, -1), w).reshape(views * n, -1)
            p = torch.exp(s / self.temperature)  # (R, 1+K)
            if torch.isnan(other.z):  # Z = mean score x M, estimated once, at the first step (public code)
                other.z.copy_(all_reduce_mean(p.detach().mean() * self.n_data))
            scores.append(p / other.z)
        loss = nce_loss(scores[0], self.n_data) + nce_loss(scores[1], self.n_data)
        with torch.no_grad():
            acc = (scores[0][:, 0] > scores[0][:, 1:].max(1).values).float().mean()
            if self.training:  # after the loss: the entry read now was written at the previous visit
                every = all_gather_cat(idx).repeat(views)  # (V*W*N,) in _gather_rows' order
                momentum_write(mem_b.entries, every, self._gather_rows(e_b, n, views), self.momentum)
                momentum_write(mem_f.entries, every, self._gather_rows(e_f, n, views), self.momentum)
        return loss, acc

    @staticmethod
    def _gather_rows(e: torch.Tensor, n: int, views: int) -> torch.Tensor:
        """(V*N, D) local rows -> (V*W*N, D) all processes' rows, ordered as ``all_gather_cat(idx).repeat(V)``."""
        return torch.cat([all_gather_cat(e[v * n:(v + 1) * n].detach()) for v in range(views)])

    def inbatch_term(self, rec: dict[str, list], images: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Same-pass positives, in-batch negatives: mean over binarisers of :func:`cmim_loss`, and the
        contrastive top-1 accuracy (no gradient)."""
        rank, world = rank_and_world()
        losses, accs = [], []
        for site, a_b, a_f in self._site_embeddings(rec):
            e_b, e_f = self.cmim.embed(site, a_b, a_f)  # (R, D) each
            neg_b, neg_f = gather_keep_local_grad(e_b), gather_keep_local_grad(e_f)  # (world*R, D)
            mask = same_image_mask(len(e_b), images, rank, world, e_b.device)
            losses.append(cmim_loss(e_b, e_f, neg_b, neg_f, self.temperature, mask))
            with torch.no_grad():
                pos = (e_b * e_f).sum(1)  # (R,)
                neg = (e_b @ neg_f.T).masked_fill(mask, float("-inf"))
                accs.append((pos > neg.max(1).values).float().mean())
        return torch.stack(losses).mean(), torch.stack(accs).mean()


def with_cmim(method: nn.Module, cfg: PretrainConfig, n_data: int | None = None) -> nn.Module:
    """``method`` unchanged when ``cfg.cmim_weight == 0``, else wrapped in :class:`WithCMIM`."""
    return WithCMIM.from_config(method, cfg, n_data) if cfg.cmim_weight > 0 else method
