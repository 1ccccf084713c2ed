"""Distributed training from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

No ``mp.spawn`` and no hard-coded URLs: launch with ``torchrun`` (see :mod:`train.pretrain`). Without
those variables everything runs as a single process. Backend: NCCL on GPU, gloo on CPU (so a
2-process CPU run works in CI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from common.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA GPU is available")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's env vars, or return a single-process DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, dev)


@torch.no_grad()
def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over processes (returns a new tensor; ``t`` itself when single-process)."""
    if not dist.is_initialized():
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


@torch.no_grad()
def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate equal-shaped ``t`` from every process along dim 0 (no gradient)."""
    if not dist.is_initialized():
        return t
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t.contiguous())
    return torch.cat(out)


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process in the default group; (0, 1) when single-process."""
    if not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def gather_keep_local_grad(t: torch.Tensor) -> torch.Tensor:
    """All-gather ``t`` (R, ...) from every process -> (world*R, ...) in rank order, where this
    process's own slice is ``t`` itself (keeps its autograd graph) and the others carry no gradient."""
    if not dist.is_initialized():
        return t
    every = all_gather_cat(t.detach())
    r, n = dist.get_rank(), len(t)
    return torch.cat([every[: r * n], t, every[(r + 1) * n:]])


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
