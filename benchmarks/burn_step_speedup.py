"""The engine's BURN step vs a straightforward per-view implementation of the same step, in one run.

  python benchmarks/burn_step_speedup.py                        # ReActNet-A at 224², batch 8, CPU
  python benchmarks/burn_step_speedup.py --config tiny --batch-size 64 --steps 10

Both steps compute the same loss (recipe ``official``: crossed views, KL + FS on the heads) and end with
the same Adam update; only the execution differs:

* naive -- what a first implementation writes (the official code's structure): the teacher, the
  classifier g and the binary network each run once per view (4 network passes of N images), every
  pass builds an autograd graph where parameters require it, NCHW tensors.
* engine -- :meth:`train.methods.burn.Burn.forward` as the training engine calls it on CPU: both views
  in one pass of 2N images per network, the frozen target branch (teacher and fixed g) under
  ``no_grad``, NCHW.
* engine+cl -- the same in channels_last (what the engine does on GPU; ``--no-channels-last`` skips it).

The steps are timed interleaved (naive, engine, engine+cl, naive, ...) so that load from other processes hits both
alike; the medians and their ratio are printed. Inputs are random tensors in memory (no data loading).
"""

from __future__ import annotations

import argparse
import sys
import time

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings
import torch

from train.config import resolve_config
from train.losses import burn_loss
from train.methods import Burn
from train.models import build_teacher

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


def main(argv=None) -> int:
    p = _bench.args_parser(__doc__)
    p.add_argument("--config", choices=sorted(CONFIGS), default="reactnet-a-224", help="model (default reactnet-a-224)")
    p.add_argument("--batch-size", type=int, default=None, help="images per view (default 8 at 224², 64 tiny)")
    p.add_argument("--steps", type=int, default=4, help="timed steps of each kind (default 4; medians reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps of each kind (default 1)")
    p.add_argument("--stage", type=int, choices=(1, 2), default=2, help="1 = float weights, 2 = binary (default 2)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the engine step in channels_last (default on)")
    args = p.parse_args(argv)
    preset, batch = CONFIGS[args.config]
    batch = args.batch_size or batch
    if batch < 2:
        print("error: --batch-size must be >= 2 (BatchNorm in train mode)", file=sys.stderr)
        return 2
    method, size = build(preset, args.stage)
    method.train()
    opt = torch.optim.Adam([q for q in method.parameters() if q.requires_grad], lr=1e-5)
    g = torch.Generator().manual_seed(0)
    v1, v2 = (torch.randn(batch, 3, size, size, generator=g) for _ in range(2))

    def naive(i: int) -> None:
        method.to(memory_format=torch.contiguous_format)
        naive_loss(method, v1, v2, i, 100).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def engine(i: int, fmt=torch.contiguous_format) -> None:
        method.to(memory_format=fmt)
        views = [v1.contiguous(memory_format=fmt), v2.contiguous(memory_format=fmt)]
        method([views, None], i, 100)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    kinds = {"naive": naive, "engine": engine}
    if args.channels_last:
        kinds["engine+cl"] = lambda i: engine(i, torch.channels_last)
    times = {k: [] for k in kinds}
    for i in range(args.warmup + args.steps):
        for name, fn in kinds.items():
            t = time.perf_counter()
            fn(i)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.config} "
          f"({size}x{size}, stage {args.stage}), batch {batch} per view, no GPU")
    for name in kinds:
        print(f"{name:9s} step {med[name] * 1e3:9.1f} ms (median of {args.steps}; all: "
              f"{', '.join(f'{t * 1e3:.0f}' for t in times[name])})  {2 * batch / med[name]:6.1f} img/s")
    for name in kinds:
        if name != "naive":
            print(f"speed-up {name} vs naive: {med['naive'] / med[name]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
