"""The training loop shared by every method: data, optimisation, AMP, DDP, logging, checkpoints.

Determinism: every sample's augmentation is seeded by (seed, epoch, index) and the data order by
(seed, epoch), so a run resumed from a mid-epoch checkpoint sees exactly the batches the
uninterrupted run would have seen, whatever ``num_workers`` is. On CPU a resumed run reaches the same
weights bit for bit (``tests/train/test_engine.py``).
"""

from __future__ import annotations

import logging
import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from common.errors import CheckpointError, ConfigError, DatasetError
from train.checkpoint import reactnet_payload, read_checkpoint, save_checkpoint
from train.config import PretrainConfig
from train.data import TwoViews, build_dataset, dataset_info, train_transform
from train.dist import DistInfo, all_gather_cat, all_reduce_mean
from train.metrics import MetricsLogger, Throughput, progress_line
from train.models import ReActNetA
from train.schedules import lr_factor

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"

# ------------------------------------------------------------------------------------------- data


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
    """``base[index]`` transformed under ``torch.manual_seed(sample_seed)``; item key = (index, seed)."""

    def __init__(self, base: Dataset, transform: Callable):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        index, seed = key
        img, label = self.base[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(img), label


def build_train_loader(cfg: PretrainConfig, data_mode: str, dinfo: DistInfo) -> tuple[DataLoader, EpochBatchSampler]:
    """Training DataLoader for ``data_mode`` "two_views" (BURN/BYOL views) or "supervised"."""
    info = dataset_info(cfg.dataset)
    base = build_dataset(cfg.dataset, "train", root=cfg.data_root)
    if cfg.limit_train:
        base = Subset(base, range(min(cfg.limit_train, len(base))))
    if len(base) == 0:
        raise DatasetError(f"the {cfg.dataset} training set at {cfg.data_root} is empty")
    tf = (TwoViews(info.input_size, info.mean, info.std) if data_mode == "two_views"
          else train_transform(info.input_size, info.mean, info.std))
    sampler = EpochBatchSampler(len(base), cfg.batch_size, cfg.seed, dinfo.rank, dinfo.world_size)
    if len(sampler) < cfg.accum_steps:
        raise DatasetError(f"{len(base)} training images give {len(sampler)} batches of {cfg.batch_size} per "
                           f"process, fewer than accum_steps={cfg.accum_steps}; lower --batch-size")
    loader = DataLoader(SeededDataset(base, tf), batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=dinfo.device.type == "cuda", persistent_workers=False)
    return loader, sampler


def _to(batch, device, channels_last: bool):
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device, channels_last) for b in batch)
    return batch


# ------------------------------------------------------------------------------------------- state


def rng_state() -> dict:
    """CPU/CUDA torch, numpy and Python RNG states as weights_only-loadable values."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def checkpoint_payload(method: nn.Module, cfg: PretrainConfig, **extra) -> dict:
    """Self-describing checkpoint: ReActNet students via ``reactnet_payload`` (readable by
    ``model_from_checkpoint``), float teachers as ``{"kind": "teacher", "teacher_arch", "model"}``
    (readable by ``build_teacher``); plus method, stage, heads, config and ``extra``."""
    student = method.student
    common = dict(method=cfg.method, stage=cfg.stage, config=cfg.to_dict(),
                  heads={name: m.state_dict() for name, m in method.heads().items()}, **extra)
    if isinstance(student, ReActNetA):
        return reactnet_payload(student, **common)
    return {"kind": "teacher", "teacher_arch": asdict(student.cfg), "model": student.state_dict(),
            "teacher_objective": cfg.teacher_objective, **common}


def load_training_state(method: nn.Module, ckpt: dict, cfg: PretrainConfig) -> None:
    """Restore the student and heads of ``method`` from a run checkpoint (for --resume)."""
    if ckpt.get("method") != cfg.method:
        raise CheckpointError(f"--resume: checkpoint was written by method {ckpt.get('method')!r}, "
                              f"this run is {cfg.method!r}")
    try:
        method.student.load_state_dict(ckpt["model"])
        for name, module in method.heads().items():
            module.load_state_dict(ckpt["heads"][name])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"--resume: checkpoint does not match this run's architecture: {str(e)[:300]}") from None


# ------------------------------------------------------------------------------------------- loop


def fit(cfg: PretrainConfig, method: nn.Module, dinfo: DistInfo,
        on_step: Callable[[int], None] | None = None) -> dict:
    """Train ``method`` per ``cfg``; writes ``<out>/checkpoint.pt`` (and metrics). Returns a summary dict.

    ``on_step(step)`` is called after every optimizer step (tests use it to simulate a crash).
    """
    out = Path(cfg.out)
    device, cuda = dinfo.device, dinfo.device.type == "cuda"
    channels_last = cfg.channels_last and cuda
    method.to(device)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"method {cfg.method!r} has nothing to train")
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader, sampler = build_train_loader(cfg, method.data, dinfo)
    spe = len(sampler) // cfg.accum_steps  # optimizer steps per epoch
    total = cfg.epochs * spe
    warmup = round(cfg.warmup_epochs * spe)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup))
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp) if cuda else None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)

    step = 0
    if cfg.resume:
        ckpt = read_checkpoint(cfg.resume)
        load_training_state(method, ckpt, cfg)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])
        if dinfo.is_main:
            print(f"resumed from {cfg.resume} at step {step}/{total}")

    model = method
    if dinfo.distributed:
        if cuda and cfg.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None,
                                                    broadcast_buffers=False)

    def save(path: Path) -> None:
        if dinfo.is_main:
            save_checkpoint(path, checkpoint_payload(
                method, cfg, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                scaler=scaler.state_dict(), step=step, epoch=step // spe, total_steps=total, rng=rng_state()))

    metrics = MetricsLogger(out, enabled=dinfo.is_main, tensorboard=cfg.tensorboard)
    meter, t0, last = Throughput(), time.perf_counter(), {}
    bar = tqdm(total=total, initial=step, desc=f"{cfg.method} stage {cfg.stage}", disable=None if dinfo.is_main
               else True, leave=False, dynamic_ncols=True)
    method.train()
    try:
        for epoch in range(step // spe, cfg.epochs):
            first = (step - epoch * spe) * cfg.accum_steps  # micro-batches already done in this epoch
            sampler.set_epoch(epoch, first)
            for i, batch in enumerate(islice(loader, spe * cfg.accum_steps - first)):
                batch = _to(batch, device, channels_last)
                boundary = (first + i + 1) % cfg.accum_steps == 0
                sync = nullcontext() if boundary or not dinfo.distributed else model.no_sync()
                with sync:
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        res = model(batch, step, total)
                    scaler.scale(res["loss"] / cfg.accum_steps).backward()
                meter.add(len(batch[0][0]) if method.data == "two_views" else len(batch[0]))
                if not boundary:
                    continue
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                step += 1
                bar.update(1)
                if step % cfg.log_every == 0 or step == total:
                    last = _log_row(res, step, epoch, optimizer, dinfo)
                    if not math.isfinite(last["loss"]):
                        raise FloatingPointError(f"loss is {last['loss']} at step {step}; lower --lr")
                    ips, step_s = meter.read(cfg.log_every)
                    last.update(img_per_s=ips * dinfo.world_size, step_s=step_s)
                    metrics.log(last)
                    if dinfo.is_main:
                        eta = (time.perf_counter() - t0) / max(1, step) * (total - step)
                        bar.write(progress_line(step, total, last, ips * dinfo.world_size, eta))
                if cfg.save_every and step % cfg.save_every == 0 and step < total:
                    save(out / CHECKPOINT_NAME)
                if on_step is not None:
                    on_step(step)
            save(out / CHECKPOINT_NAME)
        if dinfo.distributed:
            check_ranks_in_sync(method, dinfo)
    finally:
        bar.close()
        metrics.close()
    return {"step": step, "total_steps": total, "seconds": time.perf_counter() - t0,
            "checkpoint": str(out / CHECKPOINT_NAME), **{k: v for k, v in last.items() if k != "step"}}


@torch.no_grad()
def check_ranks_in_sync(method: nn.Module, dinfo: DistInfo) -> None:
    """Raise if DDP let the trained parameters drift apart between processes (compares per-tensor sums)."""
    sums = torch.stack([p.detach().double().sum() for p in method.parameters() if p.requires_grad]).cpu()
    every = all_gather_cat(sums.to(dinfo.device)[None]).cpu()  # (world, P)
    if not torch.equal(every, every[:1].expand_as(every)):
        raise RuntimeError("DDP processes ended with different parameters")
    if dinfo.is_main:
        print(f"DDP: trained parameters identical on all {dinfo.world_size} processes")


def _log_row(res: dict, step: int, epoch: int, optimizer, dinfo: DistInfo) -> dict:
    row = {"step": step, "epoch": epoch}
    for k, v in res.items():
        if isinstance(v, torch.Tensor):
            v = float(all_reduce_mean(v.detach().float()))
        row[k] = float(v)
    row["lr"] = optimizer.param_groups[0]["lr"]
    return row
