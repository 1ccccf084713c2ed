"""The optimised training step, switched as one unit (``--fast-step``, default on; ``--no-fast-step`` off).

What it turns on, each measured on this project's 2-core CPU (docs/training.md, "Training speed"):

* ``layers``  -- the binary blocks' elementwise chains as single autograd Functions
  (:func:`train.models.layers.set_fast`): RSign's shift + sign + STE, RPReLU, the weight binariser; and the
  frozen teacher's stem max-pool in channels_last memory (``FastMaxPool2d``). Same values and gradients as
  the plain composition for finite inputs (``tests/train/test_fast_step.py``).
* ``fused-adam`` -- ``torch.optim.Adam(fused=True)``: one pass per parameter tensor instead of ~8
  (same update rule; the float rounding of the update may differ in the last bit).
* ``malloc-reuse`` -- CPU only, glibc only: freed memory stays in the process (``mallopt``: no ``mmap``
  for large blocks, no trimming of the heap), so the next step's activations land on pages that are
  already mapped instead of page-faulting ~160k fresh pages per 224² step. Process-wide, numerically
  neutral; the resident set stays at the step's peak between steps.

Off, the step is the straightforward PyTorch composition (the reference the test pins against).

``compile`` (``--compile``; on in the ImageNet preset, off elsewhere; :func:`compile_networks`) goes
further: the binary network's feature path and the teacher's forward are compiled by ``torch.compile``
(Inductor), which fuses each block's elementwise and BatchNorm passes, forward and backward, into a few
generated loops around the convolutions. The layers then run their plain composition (Inductor fuses it
better than it traces the single-Function layers). Compiling costs ~1.5 min once per process at 224² on
2 cores (~15 s with Inductor's on-disk cache warm), so it pays on long ImageNet runs, not on the
minutes-long embedded preset. The same function is computed: in float64 the compiled step's loss and
gradients equal the plain step's to ~1e-12 (``tests/train/test_fast_step.py``); in float32 the fused
loops (BatchNorm's statistics among them) round differently and can flip a sign whose input is within an
ulp of 0, so a compiled run is not bit-identical to an eager one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
from collections.abc import Iterable

import torch
import torch.nn as nn

from common.errors import ConfigError
from train.config import PretrainConfig
from train.models import ReActNetA, Teacher
from train.models.layers import set_fast

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -2, -3, -4
# glibc's steady state for a training loop: the dynamic mmap threshold has risen to its 32 MiB cap and the
# trim threshold to twice that (what ``set_malloc_reuse(False)`` restores)
_GLIBC_STEADY = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20, _M_TOP_PAD: 128 << 10, _M_MMAP_MAX: 65536}
_REUSE = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 1 << 30, _M_TOP_PAD: 64 << 20}


def _libc():
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
        return lib if lib is not None and hasattr(lib, "mallopt") and hasattr(lib, "gnu_get_libc_version") else None
    except OSError:
        return None


def set_malloc_reuse(on: bool) -> bool:
    """Keep freed memory mapped in this process (glibc) or restore glibc's steady-state defaults.
    Returns False where there is no glibc (then nothing changes)."""
    lib = _libc()
    if lib is None:
        return False
    for param, value in (_REUSE if on else _GLIBC_STEADY).items():
        lib.mallopt(ctypes.c_int(param), ctypes.c_int(value))
    return True


def build_optimizer(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
                    fast: bool = True) -> torch.optim.Adam:
    """Adam over ``params``; fused (one kernel per tensor) when ``fast`` and the build supports it."""
    params = list(params)
    if fast:
        try:
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, ValueError):  # a device / dtype without a fused kernel
            pass
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


COMPILE_NOTE = ("the first step compiles the networks (torch.compile): ~1.5 min at 224² on 2 CPU cores, ~15 s "
                "with Inductor's cache warm")


def cpu_compiler() -> str | None:
    """The C++ compiler Inductor would use for CPU code ($CXX, else g++ or clang++), or None."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++"]
    return next((path for name in names if (path := shutil.which(name))), None)


def compile_networks(method: nn.Module) -> list[str]:
    """``torch.compile`` in place the networks ``method`` runs every step; returns their module paths.

    Compiled: every binary network's ``forward_features`` (its ``forward`` goes through it) and every
    teacher's ``forward``, each as an instance attribute, so state dicts, checkpoints and the export path
    are unchanged. Their layers are switched to the plain composition (:func:`set_fast` off). Not for a
    method that reads activations through forward hooks (CMIM): the engine leaves such runs uncompiled."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime is found"
    done = []
    for path, m in method.named_modules():
        if isinstance(m, ReActNetA) and "forward_features" not in vars(m):
            set_fast(m, False)
            m.forward_features = torch.compile(m.forward_features, dynamic=False)
        elif isinstance(m, Teacher) and "forward" not in vars(m):
            m.forward = torch.compile(m.forward, dynamic=False)
        else:
            continue
        done.append(path or type(m).__name__)
    return done


def apply_fast_step(method: nn.Module, on: bool, device: torch.device, compile: bool = False) -> list[str]:
    """Switch the fast layers of ``method`` and (CPU) the allocator reuse, and compile its networks when
    ``compile``; returns the names turned on (``compile`` replaces ``layers``). The optimizer is chosen by
    :func:`build_optimizer` (its ``fused`` flag shows in its defaults)."""
    set_fast(method, on)
    active = ["layers"] if on else []
    if compile and device.type == "cpu" and not cpu_compiler():
        raise ConfigError("--compile on CPU needs a C++ compiler for Inductor's generated code (g++, clang++ or "
                          "$CXX), and none is on PATH: install g++ or pass --no-compile")
    if compile:
        compiled = compile_networks(method)
        active = [f"compile ({', '.join(compiled)})"] if compiled else []
    if on and device.type == "cpu" and set_malloc_reuse(True):
        active.append("malloc-reuse")
    return active


def prepare_step(method: nn.Module, cfg: PretrainConfig, device: torch.device,
                 params: list[nn.Parameter] | None = None) -> tuple[torch.optim.Adam, list[str], str]:
    """The optimizer and step optimisations ``cfg`` asks for, applied to ``method`` (on ``device``): what
    ``train.engine.Trainer`` trains with and the benchmarks time. ``params``: the trained parameters
    (default: every one that requires grad). Returns ``(optimizer, active names, one line for logs)``;
    ``--compile`` is left off for CMIM (it reads activations through forward hooks) and the line says so."""
    params = [p for p in method.parameters() if p.requires_grad] if params is None else params
    optimizer = build_optimizer(params, cfg.lr, cfg.weight_decay, fast=cfg.fast_step)
    compile_ok = cfg.compile and cfg.cmim_weight == 0
    active = apply_fast_step(method, cfg.fast_step, device, compile=compile_ok)
    line = describe(optimizer, active)
    if cfg.compile and not compile_ok:
        line += " (--compile not applied: CMIM reads activations through forward hooks)"
    return optimizer, active, line


def describe(optimizer: torch.optim.Optimizer, active: list[str]) -> str:
    """One line for logs: the optimisations in effect, e.g. ``layers, fused-adam, malloc-reuse``."""
    names = list(active)
    if optimizer.defaults.get("fused"):
        names.insert(1 if names else 0, "fused-adam")
    return ", ".join(names) or "none (--no-fast-step)"
