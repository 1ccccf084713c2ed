"""Per-op profile (torch.profiler, CPU) of the official recipe's BURN step, grouped by kind.

  python benchmarks/profile_burn_step.py                     # ReActNet-A at 224², batch 8 per view, stage 2
  python benchmarks/profile_burn_step.py --config tiny
  python benchmarks/profile_burn_step.py --no-fast-step --no-compile   # the plain step
  python benchmarks/profile_burn_step.py --no-compile       # the fast step in eager mode

The method is built through the recipe's config path (``Burn.from_config``; random teacher weights).
Self CPU time of every op is summed into: convolutions (forward and backward), elementwise + BatchNorm,
the teacher's forward (its own record_function range), the optimizer (Adam) and everything else.
The step is the one ``train.pretrain`` runs on CPU: with the fast step (:mod:`train.fast_step`) unless
``--no-fast-step``, compiled where the preset compiles (ImageNet) unless ``--no-compile``. The warm-up step
compiles; the generated kernels (Inductor's fused elementwise and BatchNorm loops) count as "compiled".
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import replace

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings
import torch
from burn_step_speedup import CONFIGS
from torch.profiler import ProfilerActivity, profile, record_function
from train_speed import build

from train.fast_step import prepare_step

CONV = ("conv", "mkldnn_convolution")
ELEMENTWISE = ("add", "mul", "where", "sign", "abs", "clamp", "prelu", "batch_norm", "sub", "div", "ge", "le",
               "neg", "fill", "copy", "mean", "sum", "avg_pool", "threshold", "relu", "cat", "native_batch_norm")


def kind(name: str) -> str:
    n = name.lower()
    if "compiledfxgraph" in n:
        return "compiled"  # the self time of a compiled graph: its generated (fused) loops
    if any(c in n for c in CONV):
        return "conv"
    if "mm" in n or "linear" in n:
        return "matmul"
    if any(e in n for e in ELEMENTWISE):
        return "elementwise/bn"
    return "other"


def main(argv=None) -> int:
    p = _bench.args_parser(__doc__)
    p.add_argument("--config", choices=sorted(CONFIGS), default="reactnet-a-224")
    p.add_argument("--stage", type=int, choices=(1, 2), default=2)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--fast-step", action=argparse.BooleanOptionalAction, default=True,
                   help="the fast step of train.fast_step (default on, as train.pretrain)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the networks (default: the preset's setting, on at 224²)")
    args = p.parse_args(argv)
    preset, batch = CONFIGS[args.config]
    method, size, cfg = build(preset, args.stage)
    method.train()
    cfg = replace(cfg, lr=1e-5, fast_step=args.fast_step, compile=cfg.compile if args.compile is None else args.compile)
    opt, _, active = prepare_step(method, cfg, torch.device("cpu"))  # as train.engine.Trainer
    views = [torch.randn(args.batch_size or batch, 3, size, size) for _ in range(2)]
    teacher_forward = method.teacher.forward

    def timed_teacher(x):
        with record_function("TEACHER"):
            return teacher_forward(x)

    method.teacher.forward = timed_teacher

    def step():
        with record_function("FORWARD"):
            loss = method([views, None], 0, 100)["loss"]
        with record_function("BACKWARD"):
            loss.backward()
        with record_function("OPTIMIZER"):
            opt.step()
            opt.zero_grad(set_to_none=True)

    step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    ranges = {e.key: e.cpu_time_total for e in events if e.key in ("TEACHER", "FORWARD", "BACKWARD", "OPTIMIZER")}
    total = sum(ranges.get(k, 0) for k in ("FORWARD", "BACKWARD", "OPTIMIZER"))
    # ops inside the teacher / optimizer ranges are attributed there; the rest by op kind
    by_kind = defaultdict(float)
    for e in events:
        if e.key in ranges or e.key.startswith("Optimizer") or e.key.startswith("autograd::engine"):
            continue
        by_kind[kind(e.key)] += e.self_cpu_time_total
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.config}, stage {args.stage}, "
          f"batch {args.batch_size or batch} per view; optimisations: {active}; one step {total / 1e6:.2f} s")
    for k in ("TEACHER", "FORWARD", "BACKWARD", "OPTIMIZER"):
        print(f"  range {k:10s} {ranges.get(k, 0) / 1e3:9.1f} ms  {ranges.get(k, 0) / total:6.1%}")
    ops = sum(by_kind.values())
    for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  ops   {k:14s} {v / 1e3:9.1f} ms  {v / ops:6.1%} of op self time")
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    sys.exit(main())
