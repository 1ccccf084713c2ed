"""Deterministic, resumable training data: a sampler that can start mid-epoch and a dataset whose
augmentations are seeded per sample.

Every sample's augmentation is seeded by (seed, epoch, index) and the data order by (seed, epoch), so
a run resumed from a mid-epoch checkpoint sees exactly the batches the uninterrupted run would have
seen, whatever ``num_workers`` is.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from common.errors import DatasetError
from train.config import PretrainConfig
from train.data import TwoViews, build_dataset, dataset_info, require_classes, train_transform
from train.dist import DistInfo


class EpochBatchSampler:
    """Batches of ``(index, sample_seed)`` for one process: a DistributedSampler that can start mid-epoch.

    Epoch e's order is a permutation drawn from ``seed + e``, padded (wrapping) to a multiple of
    ``world_size`` and strided by ``rank``; incomplete final batches are dropped. ``set_epoch(e, start)``
    skips the first ``start`` batches without loading them.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return math.ceil(self.n / self.world_size) // self.batch_size

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = math.ceil(self.n / self.world_size)
        order += order[: per_rank * self.world_size - self.n]
        return order[self.rank::self.world_size]

    def sample_seed(self, index: int) -> int:
        return (self.seed * 1_000_003 + self.epoch) * 10_000_019 + index

    def __iter__(self):
        idx, b = self.indices(), self.batch_size
        for i in range(self.start, len(self)):
            yield [(j, self.sample_seed(j)) for j in idx[i * b:(i + 1) * b]]


class SeededDataset(Dataset):
    """``base[index]`` transformed under ``torch.manual_seed(sample_seed)``; item key = (index, seed).

    An item is ``(image or views, label, index)``: the index (position in the training set) lets a
    method keep per-sample state (CMIM's memory, :mod:`train.methods.cmim`)."""

    def __init__(self, base: Dataset, transform: Callable):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        index, seed = key
        img, label = self.base[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(img), label, index


def training_set(cfg: PretrainConfig) -> Dataset:
    """The training images of ``cfg`` without transform (the first ``limit_train`` when set)."""
    base = build_dataset(cfg.dataset, "train", root=cfg.data_root)
    if cfg.limit_train:
        base = Subset(base, range(min(cfg.limit_train, len(base))))
    if len(base) == 0:
        raise DatasetError(f"the {cfg.dataset} training set at {cfg.data_root} is empty")
    return base


def training_labels(cfg: PretrainConfig) -> list[int] | None:
    """The label of every training image in index order (no image is decoded); None if unknown."""
    base = training_set(cfg)
    parent, idx = (base.dataset, list(base.indices)) if isinstance(base, Subset) else (base, None)
    targets = getattr(parent, "targets", None)
    if targets is None:
        return None
    return [int(targets[i]) for i in idx] if idx is not None else [int(t) for t in targets]


def build_train_loader(cfg: PretrainConfig, data_mode: str, dinfo: DistInfo) -> tuple[DataLoader, EpochBatchSampler]:
    """Training DataLoader for ``data_mode`` "two_views" (BURN/BYOL views) or "supervised".

    Batches are ``(views or images, labels, indices)``: ``((v1, v2), y, i)`` or ``(x, y, i)``."""
    info = dataset_info(cfg.dataset)
    base = training_set(cfg)
    if data_mode == "supervised":
        require_classes(base, f"the {cfg.dataset} training set" + (f" at {cfg.data_root}" if cfg.data_root else ""))
    tf = (TwoViews(info.input_size, info.mean, info.std, cfg.augment, cfg.crop_min_scale, cfg.hflip)
          if data_mode == "two_views" else train_transform(info.input_size, info.mean, info.std))
    sampler = EpochBatchSampler(len(base), cfg.batch_size, cfg.seed, dinfo.rank, dinfo.world_size)
    if len(sampler) < cfg.accum_steps:
        raise DatasetError(f"{len(base)} training images give {len(sampler)} batches of {cfg.batch_size} per "
                           f"process, fewer than accum_steps={cfg.accum_steps}; lower --batch-size")
    loader = DataLoader(SeededDataset(base, tf), batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=dinfo.device.type == "cuda", persistent_workers=False)
    return loader, sampler


def to_device(batch, device: torch.device, channels_last: bool):
    """Move a (nested tuple/list of) tensor batch to ``device``; 4-d tensors to channels_last if asked."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, channels_last) for b in batch)
    return batch


def batch_images(batch, data_mode: str) -> int:
    """Images in a batch: ``((v1, v2), labels[, indices])`` for two views, ``(x, labels[, indices])`` otherwise."""
    return len(batch[0][0]) if data_mode == "two_views" else len(batch[0])
