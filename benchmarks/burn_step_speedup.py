"""The engine's BURN step vs a straightforward per-view implementation of the same step, in one run.

  python benchmarks/burn_step_speedup.py                        # digits-tiny (batch 64), then ReActNet-A 224² (8)
  python benchmarks/burn_step_speedup.py --config tiny --steps 10
  python benchmarks/burn_step_speedup.py --plain                # also the engine with its optimisations off

Both steps compute the recipe's loss (``official``: crossed views, KL + FS on the heads) and end with an
Adam update; only the execution differs:

* naive -- what a first implementation writes (the official code's structure): the teacher, the
  classifier g and the binary network each run once per view (4 network passes of N images), the
  layers as plain compositions of PyTorch ops, ``torch.optim.Adam`` as is, glibc's default allocator.
* engine -- :meth:`train.methods.burn.Burn.forward` set up as ``train.engine.Trainer`` sets it up from the
  preset's config: both views in one pass of 2N images per network, the frozen teacher and fixed g
  without an autograd graph, and the fast step (:mod:`train.fast_step`): fused Adam, allocator reuse, and
  either the single-Function layers or (``compile``, the ImageNet preset's default) the networks compiled
  by ``torch.compile``. The optimisations in effect are printed.
* with ``--plain``: engine-eager (the engine without ``compile``, where the preset compiles) and
  engine-plain (``--no-fast-step --no-compile``): what each part buys.

Each kind runs in its own worker process (its own allocator state, its own compiled graphs), built from
the same seed; the parent steps them interleaved (naive, engine, ..., naive, ...) so that load from other
processes hits all alike, and prints medians of wall time and of the worker's CPU time, page faults per
step, and the first step's time (which includes compiling). Inputs are random tensors in memory (no data
loading); the loss of the first step is printed for each kind (naive vs engine differ slightly: BatchNorm
sees N images per view there, 2N here, and a compiled float32 step rounds differently).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import time
from dataclasses import replace

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings
import torch
from train_speed import build, recipe_config  # benchmarks/train_speed.py: the recipe's method, one way

from train.fast_step import build_optimizer, prepare_step, set_malloc_reuse
from train.losses import burn_loss
from train.methods import Burn
from train.models.layers import set_fast

CONFIGS = {"reactnet-a-224": ("imagenet-reactnet-a", 8), "tiny": ("digits-tiny", 64)}  # preset, batch per view


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


def setup(kind: str, preset: str, stage: int, batch: int):
    """Build the method for ``kind`` in this process; returns (step function, optimisations line)."""
    method, size, cfg = build(preset, stage)
    method.train()
    params = [q for q in method.parameters() if q.requires_grad]
    g = torch.Generator().manual_seed(0)
    v1, v2 = (torch.randn(batch, 3, size, size, generator=g) for _ in range(2))
    cpu = torch.device("cpu")
    if kind == "naive":
        set_fast(method, False)
        set_malloc_reuse(False)
        opt = build_optimizer(params, lr=1e-5, fast=False)
        active = "none (plain layers, plain Adam, glibc defaults)"

        def loss(i: int) -> torch.Tensor:
            return naive_loss(method, v1, v2, i, 100)
    else:  # the Trainer's setup (train.fast_step.prepare_step), with parts switched off for the ablations
        cfg = replace(cfg, lr=1e-5, fast_step=cfg.fast_step and kind != "engine-plain",
                      compile=cfg.compile and kind == "engine")
        opt, _, active = prepare_step(method, cfg, cpu, params)

        def loss(i: int) -> torch.Tensor:
            return method([[v1, v2], None], i, 100)["loss"]

    def step(i: int) -> float:
        out = loss(i)
        out.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out.detach())

    return step, active


def worker(kind: str, preset: str, stage: int, batch: int, conn) -> None:
    """Serve steps: receive a step index, run it, send (wall s, CPU s, page faults, loss); None ends."""
    step, active = setup(kind, preset, stage, batch)
    conn.send(active)
    while (i := conn.recv()) is not None:
        f0, c0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time(), time.perf_counter()
        loss = step(i)
        conn.send((time.perf_counter() - t0, time.process_time() - c0,
                   resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0, loss))


def run_config(name: str, batch: int, args) -> dict[str, float]:
    """Time every kind on config ``name`` (one worker process each, stepped interleaved); print the
    table and return the wall-time speed-up of each engine kind over naive."""
    preset = CONFIGS[name][0]
    cfg = recipe_config(preset, args.stage)
    kinds = ["naive", "engine"]
    if args.plain:
        kinds += (["engine-eager"] if cfg.compile else []) + ["engine-plain"]
    ctx = mp.get_context("spawn")
    conns, procs, active = {}, [], {}
    for kind in kinds:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(kind, preset, args.stage, batch, child), daemon=True)
        proc.start()
        conns[kind] = parent
        procs.append(proc)
    try:
        for kind in kinds:
            active[kind] = conns[kind].recv()
        wall, cpu_s, faults = ({k: [] for k in kinds} for _ in range(3))
        first, loss0 = {}, {}
        for i in range(args.warmup + args.steps):
            for kind in kinds:
                conns[kind].send(i)
                w, c, f, loss = conns[kind].recv()
                if i == 0:
                    first[kind], loss0[kind] = w, loss
                if i >= args.warmup:
                    wall[kind].append(w)
                    cpu_s[kind].append(c)
                    faults[kind].append(f)
        for kind in kinds:
            conns[kind].send(None)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    med = {k: median(v) for k, v in wall.items()}
    cmed = {k: median(v) for k, v in cpu_s.items()}
    print(f"\n{name} ({preset}, official recipe, stage {args.stage}), batch {batch} per view; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, no GPU; one worker process per kind")
    for kind in kinds:
        print(f"  {kind:12s} optimisations: {active[kind]}")
    for kind in kinds:
        print(f"  {kind:12s} step {med[kind] * 1e3:9.1f} ms wall, {cmed[kind] * 1e3:9.1f} ms CPU (medians of "
              f"{args.steps}; wall: {', '.join(f'{t * 1e3:.0f}' for t in wall[kind])}), "
              f"{median(faults[kind]):8.0f} page faults, {2 * batch / med[kind]:6.1f} img/s; "
              f"first step {first[kind]:.1f} s, loss {loss0[kind]:.6f}")
    speedups = {}
    for kind in kinds[1:]:
        speedups[kind] = med["naive"] / med[kind]
        print(f"  speed-up {kind} vs naive: {speedups[kind]:.2f}x wall, {cmed['naive'] / cmed[kind]:.2f}x CPU time")
    return speedups


def main(argv=None) -> int:
    p = _bench.args_parser(__doc__)
    p.add_argument("--config", choices=sorted(CONFIGS) + ["all"], default="all",
                   help="model: tiny, reactnet-a-224 or all (default: both, tiny first)")
    p.add_argument("--batch-size", type=int, default=None, help="images per view (default 64 tiny, 8 at 224²)")
    p.add_argument("--steps", type=int, default=6, help="timed steps of each kind (default 6; medians reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps of each kind (default 1; the "
                                                         "first includes compiling)")
    p.add_argument("--stage", type=int, choices=(1, 2), default=2, help="1 = float weights, 2 = binary (default 2)")
    p.add_argument("--plain", action="store_true", help="also time the engine without compile (where the preset "
                                                        "compiles) and with no optimisation at all (at 224²: four "
                                                        "workers of 3-5 GB each)")
    args = p.parse_args(argv)
    names = ["tiny", "reactnet-a-224"] if args.config == "all" else [args.config]
    batches = {n: args.batch_size or CONFIGS[n][1] for n in names}
    if min(batches.values()) < 2 or args.steps < 1 or args.warmup < 1:
        print("error: --batch-size must be >= 2 (BatchNorm in train mode), --steps >= 1, --warmup >= 1",
              file=sys.stderr)
        return 2
    results = {n: run_config(n, batches[n], args) for n in names}
    print("\nsummary: the engine step vs the naive one, wall time: "
          + "; ".join(f"{n} {r['engine']:.2f}x" for n, r in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
