"""The engine's BURN step vs a straightforward per-view implementation of the same step, in one run.

  python benchmarks/burn_step_speedup.py                        # ReActNet-A at 224², batch 8, CPU
  python benchmarks/burn_step_speedup.py --config tiny --batch-size 64 --steps 10

Both steps compute the same loss (recipe ``official``: crossed views, KL + FS on the heads) and end with
an Adam update; only the execution differs:

* naive -- what a first implementation writes (the official code's structure): the teacher, the
  classifier g and the binary network each run once per view (4 network passes of N images), the
  layers as plain compositions of PyTorch ops (``--no-fast-step``), ``torch.optim.Adam`` as is, and
  glibc's default allocator behaviour.
* engine -- :meth:`train.methods.burn.Burn.forward` as ``train.pretrain`` runs it on CPU: both views in
  one pass of 2N images per network, the frozen teacher and fixed g without an autograd graph, and the
  fast step (:mod:`train.fast_step`: fused binariser / RPReLU autograd Functions, fused Adam, allocator
  reuse). The optimisations in effect are printed.
* engine-plain (``--plain``) -- the engine step with ``--no-fast-step``: what the fast step alone buys.

The steps are timed interleaved (naive, engine, ..., naive, ...) so that load from other processes hits
all alike; medians of wall time and of process CPU time, and page faults per step, are printed. The
allocator setting is process-wide, so it is switched before every step of each kind. Inputs are random
tensors in memory (no data loading).
"""

from __future__ import annotations

import resource
import sys
import time

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings
import torch

from train.config import resolve_config
from train.fast_step import apply_fast_step, build_optimizer, describe, set_malloc_reuse
from train.losses import burn_loss
from train.methods import Burn
from train.models import build_teacher
from train.models.layers import set_fast

CONFIGS = {"reactnet-a-224": ("imagenet-reactnet-a", 8), "tiny": ("digits-tiny", 64)}


def build(preset: str, stage: int) -> tuple[Burn, int]:
    """A Burn method with the official recipe at ``preset``'s scale (random teacher weights)."""
    cfg = resolve_config(preset, method="burn", stage=stage)  # recipe "official" by default
    torch.manual_seed(0)
    teacher = build_teacher(cfg.teacher_arch, small_input=cfg.teacher_small_input)
    method = Burn.from_config(cfg, teacher=teacher)  # the path train.pretrain takes
    return method, method.student.cfg.input_size


def naive_loss(m: Burn, v1: torch.Tensor, v2: torch.Tensor, step: int, total: int) -> torch.Tensor:
    """The same objective, one view at a time: (N, 3, S, S) x 2 -> scalar loss."""
    t1, t2 = m.classifier(m.teacher(v1)), m.classifier(m.teacher(v2))  # g(h(v)): (N, D) each
    s1, s2 = m.student(v1), m.student(v2)  # l(k(v)): (N, D) each
    lam = m.lam(step, total)
    a = burn_loss(t2, s1, lam, m.temperature, m.fs)
    b = burn_loss(t1, s2, lam, m.temperature, m.fs)
    return (a.total + b.total) / 2


def median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def main(argv=None) -> int:
    p = _bench.args_parser(__doc__)
    p.add_argument("--config", choices=sorted(CONFIGS), default="reactnet-a-224", help="model (default reactnet-a-224)")
    p.add_argument("--batch-size", type=int, default=None, help="images per view (default 8 at 224², 64 tiny)")
    p.add_argument("--steps", type=int, default=4, help="timed steps of each kind (default 4; medians reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps of each kind (default 1)")
    p.add_argument("--stage", type=int, choices=(1, 2), default=2, help="1 = float weights, 2 = binary (default 2)")
    p.add_argument("--plain", action="store_true", help="also time the engine step without the fast step")
    args = p.parse_args(argv)
    preset, batch = CONFIGS[args.config]
    batch = args.batch_size or batch
    if batch < 2 or args.steps < 1 or args.warmup < 0:
        print("error: --batch-size must be >= 2 (BatchNorm in train mode), --steps >= 1, --warmup >= 0",
              file=sys.stderr)
        return 2
    method, size = build(preset, args.stage)
    method.train()
    params = [q for q in method.parameters() if q.requires_grad]
    cpu = torch.device("cpu")
    fast_opt = build_optimizer(params, lr=1e-5, fast=True)  # what train.engine.Trainer builds
    active = describe(fast_opt, apply_fast_step(method, True, cpu))
    plain_opt = build_optimizer(params, lr=1e-5, fast=False)
    g = torch.Generator().manual_seed(0)
    v1, v2 = (torch.randn(batch, 3, size, size, generator=g) for _ in range(2))

    def naive(i: int) -> None:
        set_fast(method, False)
        set_malloc_reuse(False)
        naive_loss(method, v1, v2, i, 100).backward()
        plain_opt.step()
        plain_opt.zero_grad(set_to_none=True)

    def engine(i: int, fast: bool = True) -> None:
        set_fast(method, fast)
        set_malloc_reuse(fast)
        opt = fast_opt if fast else plain_opt
        method([[v1, v2], None], i, 100)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    kinds = {"naive": naive, "engine": engine}
    if args.plain:
        kinds["engine-plain"] = lambda i: engine(i, fast=False)
    wall, cpu_s, faults = ({k: [] for k in kinds} for _ in range(3))
    for i in range(args.warmup + args.steps):
        for name, fn in kinds.items():
            f0, c0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time(), time.perf_counter()
            fn(i)
            if i >= args.warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu_s[name].append(time.process_time() - c0)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    set_malloc_reuse(False)
    med = {k: median(v) for k, v in wall.items()}
    cmed = {k: median(v) for k, v in cpu_s.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.config} "
          f"({size}x{size}, stage {args.stage}), batch {batch} per view, no GPU")
    print(f"engine step optimisations: {active}")
    for name in kinds:
        print(f"{name:12s} step {med[name] * 1e3:9.1f} ms wall, {cmed[name] * 1e3:9.1f} ms CPU (medians of "
              f"{args.steps}; wall: {', '.join(f'{t * 1e3:.0f}' for t in wall[name])}), "
              f"{median(faults[name]):8.0f} page faults, {2 * batch / med[name]:6.1f} img/s")
    for name in kinds:
        if name != "naive":
            print(f"speed-up {name} vs naive: {med['naive'] / med[name]:.2f}x wall, "
                  f"{cmed['naive'] / cmed[name]:.2f}x CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
