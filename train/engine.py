"""The training loop shared by every method: optimisation, AMP, DDP, logging, checkpoints.

Read top to bottom: :class:`Trainer` sets up (optimizer, LR schedule, loader, DDP), :meth:`Trainer.restore`
continues an interrupted run, :meth:`Trainer.train_one_epoch` runs one epoch of optimizer steps,
:meth:`Trainer.save` writes the run checkpoint, and :func:`fit` strings them together.

Determinism: data order and augmentations are seeded per (seed, epoch, index) (:mod:`train.loader`) and
the RNG states travel in the checkpoint (:mod:`train.rng`), so on CPU a run resumed from a mid-epoch
checkpoint reaches the same weights bit for bit as the uninterrupted run (``tests/train/test_engine.py``).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from tqdm import tqdm

from common.errors import CheckpointError, ConfigError, NonFiniteError
from common.files import remove_stale_temps
from train.checkpoint import nonfinite_names, read_checkpoint, save_checkpoint
from train.config import PretrainConfig
from train.dist import DistInfo, all_gather_cat, all_reduce_mean
from train.fast_step import COMPILE_NOTE, prepare_step, set_malloc_reuse
from train.loader import batch_images, build_train_loader, to_device
from train.metrics import MetricsLogger, Throughput, progress_line
from train.rng import capture_rng_state, restore_rng_state, seed_everything
from train.run_state import checkpoint_payload, load_training_state
from train.schedules import lr_factor

CHECKPOINT_NAME = "checkpoint.pt"

__all__ = ["CHECKPOINT_NAME", "Trainer", "fit", "seed_everything"]


class Trainer:
    """One training run of ``method`` per ``cfg`` in this process (a DDP rank when ``dinfo`` says so).

    ``step`` counts optimizer steps; an optimizer step consumes ``cfg.accum_steps`` micro-batches.
    ``on_step(step)`` is called after every optimizer step (tests use it to simulate a crash).
    """

    def __init__(self, cfg: PretrainConfig, method: nn.Module, dinfo: DistInfo,
                 on_step: Callable[[int], None] | None = None):
        self.cfg, self.method, self.dinfo, self.on_step = cfg, method, dinfo, on_step
        self.out = Path(cfg.out)
        self.device, cuda = dinfo.device, dinfo.device.type == "cuda"
        self.channels_last = cfg.channels_last and cuda
        method.to(self.device)
        if self.channels_last:
            method.to(memory_format=torch.channels_last)
        params = [p for p in method.parameters() if p.requires_grad]
        if not params:
            raise ConfigError(f"method {cfg.method!r} has nothing to train")
        self.optimizer, self.fast_active, self.fast = prepare_step(method, cfg, self.device, params)
        self.loader, self.sampler = build_train_loader(cfg, method.data, dinfo)
        self.steps_per_epoch = len(self.sampler) // cfg.accum_steps
        self.total = cfg.epochs * self.steps_per_epoch
        warmup = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.total, warmup))
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp) if cuda else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)
        self.step = 0
        self.saved_step: int | None = None  # step of the last checkpoint this run wrote or resumed from
        self.last: dict = {}  # the last logged row

    # ------------------------------------------------------------------------------ state

    def restore(self, path: str) -> None:
        """Continue the run checkpointed at ``path``: weights, optimizer, schedules, step and RNG states."""
        ckpt = read_checkpoint(path)
        load_training_state(self.method, ckpt, self.cfg)
        missing = [k for k in ("optimizer", "scheduler", "scaler", "step", "rng") if k not in ckpt]
        if missing:
            raise CheckpointError(f"--resume {path}: not a run checkpoint (no {', '.join(missing)})")
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
            self.step = int(ckpt["step"])
            restore_rng_state(ckpt["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
            raise CheckpointError(f"--resume {path}: its training state is unusable ({type(e).__name__}: "
                                  f"{e})") from None
        if not 0 <= self.step <= self.total:
            raise CheckpointError(f"--resume {path}: step {self.step} is outside this run's 0..{self.total}")
        self.saved_step = self.step
        if self.dinfo.is_main:
            print(f"resumed from {path} at step {self.step}/{self.total}")

    def save(self) -> None:
        """Write ``<out>/checkpoint.pt`` atomically (main process only). Never writes non-finite weights:
        raises NonFiniteError and leaves the last good checkpoint in place."""
        bad = nonfinite_names(self.method.state_dict().items())
        if bad:
            raise NonFiniteError(f"{len(bad)} tensors of the model hold NaN/Inf at step {self.step} (e.g. "
                                 f"{', '.join(bad[:3])}); not saved. {self.where_good()}; lower --lr")
        if self.dinfo.is_main:
            save_checkpoint(self.out / CHECKPOINT_NAME, checkpoint_payload(
                self.method, self.cfg, optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict(), step=self.step,
                epoch=self.step // self.steps_per_epoch, total_steps=self.total, rng=capture_rng_state()))
        self.saved_step = self.step

    def where_good(self) -> str:
        """Where the last good checkpoint is, for error messages."""
        path = self.out / CHECKPOINT_NAME
        if self.saved_step is None:
            return f"No checkpoint was written by this run ({path} is unchanged)"
        return f"The last good checkpoint is {path} (step {self.saved_step})"

    def check_loss(self, loss: torch.Tensor, epoch: int) -> None:
        """Every micro-batch: stop before backward() on a NaN/Inf loss (all processes agree under DDP)."""
        bad = torch.logical_not(torch.isfinite(loss.detach().float()).all()).float()
        if self.dinfo.distributed:
            bad = all_reduce_mean(bad)
        if float(bad) > 0:
            raise NonFiniteError(f"loss is {float(loss.detach().float())} at step {self.step + 1} (epoch {epoch}); "
                                 f"training stopped. {self.where_good()}; lower --lr")

    # ------------------------------------------------------------------------------ loop

    def wrap_ddp(self) -> nn.Module:
        """The module to call: ``method`` itself, or a DDP wrapper (with SyncBN on GPU) when distributed."""
        model = self.method
        if self.dinfo.distributed:
            cuda = self.device.type == "cuda"
            if cuda and self.cfg.sync_bn:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if cuda else None,
                                                        broadcast_buffers=False)
        return model

    def train_one_epoch(self, epoch: int) -> None:
        """Optimizer steps of ``epoch`` from ``self.step`` to the epoch's end (mid-epoch after a resume)."""
        cfg, method, dinfo = self.cfg, self.method, self.dinfo
        spe, accum = self.steps_per_epoch, cfg.accum_steps
        first = (self.step - epoch * spe) * accum  # micro-batches already done in this epoch
        self.sampler.set_epoch(epoch, first)
        for i, batch in enumerate(islice(self.loader, spe * accum - first)):
            batch = to_device(batch, self.device, self.channels_last)
            boundary = (first + i + 1) % accum == 0
            sync = nullcontext() if boundary or not dinfo.distributed else self.model.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                    res = self.model(batch, self.step, self.total)
                self.check_loss(res["loss"], epoch)
                self.scaler.scale(res["loss"] / accum).backward()
            self.meter.add(batch_images(batch, method.data))
            if not boundary:
                continue
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            self.step += 1
            self.bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == self.total:
                self.log(res, epoch)
            if cfg.save_every and self.step % cfg.save_every == 0 and self.step < self.total:
                self.save()
            if self.on_step is not None:
                self.on_step(self.step)

    def log(self, res: dict, epoch: int) -> None:
        """Average the step's scalars over processes, write a metrics row and a progress line."""
        row = {"step": self.step, "epoch": epoch}
        for k, v in res.items():
            if isinstance(v, torch.Tensor):
                v = float(all_reduce_mean(v.detach().float()))
            row[k] = float(v)
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        ips, step_s = self.meter.read(self.cfg.log_every)
        world = self.dinfo.world_size
        row.update(img_per_s=ips * world, step_s=step_s)
        self.metrics.log(row)
        if self.dinfo.is_main:
            eta = (time.perf_counter() - self.t0) / max(1, self.step) * (self.total - self.step)
            self.bar.write(progress_line(self.step, self.total, row, ips * world, eta))
        self.last = row

    def fit(self) -> dict:
        """Restore (``cfg.resume``), train the remaining epochs saving at each epoch's end, return a summary."""
        if self.dinfo.is_main:
            removed = remove_stale_temps(self.out)  # partial checkpoints of a killed save
            if removed:
                print(f"removed {len(removed)} stale temp file(s) of a killed run from {self.out}")
        if self.cfg.resume:
            self.restore(self.cfg.resume)
        self.model = self.wrap_ddp()
        self.metrics = MetricsLogger(self.out, enabled=self.dinfo.is_main, tensorboard=self.cfg.tensorboard)
        self.metrics.truncate_after(self.step)  # a resumed run rewrites the steps after its checkpoint
        self.meter, self.t0 = Throughput(), time.perf_counter()
        what = "teacher" if self.cfg.method == "teacher" else f"{self.cfg.method} stage {self.cfg.stage}"
        self.bar = tqdm(total=self.total, initial=self.step, desc=what,
                        disable=None if self.dinfo.is_main else True, leave=False, dynamic_ncols=True)
        self.method.train()
        if self.dinfo.is_main:
            print(f"step optimisations: {self.fast}")
            if any(a.startswith("compile (") for a in self.fast_active):
                print(COMPILE_NOTE)
        try:
            for epoch in range(self.step // self.steps_per_epoch, self.cfg.epochs):
                self.train_one_epoch(epoch)
                self.save()
            if self.dinfo.distributed:
                check_ranks_in_sync(self.method, self.dinfo)
        finally:
            self.bar.close()
            self.metrics.close()
            if "malloc-reuse" in self.fast_active:  # the allocator setting is process-wide: hand it back
                set_malloc_reuse(False)
        return {"step": self.step, "total_steps": self.total, "seconds": time.perf_counter() - self.t0,
                "checkpoint": str(self.out / CHECKPOINT_NAME),
                **{k: v for k, v in self.last.items() if k != "step"}}


def fit(cfg: PretrainConfig, method: nn.Module, dinfo: DistInfo,
        on_step: Callable[[int], None] | None = None) -> dict:
    """Train ``method`` per ``cfg``; writes ``<out>/checkpoint.pt`` (and metrics). Returns a summary dict."""
    return Trainer(cfg, method, dinfo, on_step).fit()


@torch.no_grad()
def check_ranks_in_sync(method: nn.Module, dinfo: DistInfo) -> None:
    """Raise if DDP let the trained parameters drift apart between processes (compares per-tensor sums).

    Buffers of modules marked ``replicated = True`` (the memory queues, which every process feeds with
    the all-gathered batch) are compared too."""
    tensors = [p for p in method.parameters() if p.requires_grad]
    tensors += [b for m in method.modules() if getattr(m, "replicated", False) for b in m.buffers()]
    sums = torch.stack([t.detach().double().sum() for t in tensors]).cpu()
    every = all_gather_cat(sums.to(dinfo.device)[None]).cpu()  # (world, P)
    if not torch.equal(every, every[:1].expand_as(every)):
        raise RuntimeError("DDP processes ended with different parameters")
    if dinfo.is_main:
        print(f"DDP: trained parameters identical on all {dinfo.world_size} processes")
