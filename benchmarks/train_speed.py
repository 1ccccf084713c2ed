"""Training throughput of one BURN step (teacher forward, binary forward/backward, Adam update).

  python benchmarks/train_speed.py                       # both configs, CPU (+ GPU when available)
  python benchmarks/train_speed.py --config tiny --steps 20 --device cpu
  python benchmarks/train_speed.py --config reactnet-a-224 --device cuda --batch-size 128 --amp bf16
  python benchmarks/train_speed.py --config tiny --cmim           # the same step without and with CMIM

Inputs are random tensors already in memory, so the numbers are the model step only (no data
loading or augmentation). The step is set up as ``train.engine.Trainer`` sets it up
(``train.fast_step.prepare_step``: fused Adam, the fast layers or, where the preset compiles, torch.compile;
the optimisations are printed); on GPU it uses channels_last and the chosen autocast dtype, as the engine
does. The teacher runs once for both views without an autograd graph. The method is the
recipe's (``--recipe``, default official), built through the config path the engine takes
(``train.config.resolve_config`` -> ``Burn.from_config``) with random teacher weights. ``--cmim`` times
every config twice, without and with the CMIM term (the preset's ``--cmim-*`` values, alpha 3.2; the
memory variant over a stand-in training set of 10,000 images, whose size does not change the step), the
two variants taking turns step by step, and prints the overhead.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import replace

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings
import torch

from train.config import RECIPES, PretrainConfig, resolve_config
from train.fast_step import prepare_step, set_malloc_reuse
from train.methods import Burn
from train.methods.cmim import with_cmim
from train.models import build_teacher

CONFIGS = {
    # name: (preset, cpu batch, gpu batch)
    "reactnet-a-224": ("imagenet-reactnet-a", 8, 128),
    "tiny": ("digits-tiny", 64, 256),
}


STAND_IN_IMAGES = 10_000  # CMIM memory size for the benchmark (no data set is read)


def recipe_config(preset: str, stage: int, cmim_weight: float = 0.0, recipe: str = "official") -> PretrainConfig:
    """BURN's config at ``preset``'s scale, as ``train.pretrain --preset ... --method burn`` resolves it."""
    return resolve_config(preset, method="burn", stage=stage, recipe=recipe, cmim_weight=cmim_weight)


def build(preset: str, stage: int, cmim_weight: float = 0.0, recipe: str = "official") \
        -> tuple[Burn, int, PretrainConfig]:
    """BURN as ``train.pretrain`` builds it for ``preset``/``recipe``, with a random teacher (seed 0); + CMIM.
    Returns (method, input size, the resolved config)."""
    cfg = recipe_config(preset, stage, cmim_weight, recipe)
    torch.manual_seed(0)
    teacher = build_teacher(cfg.teacher_arch, small_input=cfg.teacher_small_input)
    method = with_cmim(Burn.from_config(cfg, teacher=teacher), cfg, n_data=STAND_IN_IMAGES)
    return method, method.student.cfg.input_size, cfg


def bench(name: str, device: str, batch: int, steps: int, warmup: int, amp: str, stage: int,
          cmim_weights: tuple[float, ...] = (0.0,), recipe: str = "official") -> list[dict]:
    """Median step time of BURN on ``name`` for each CMIM weight (0 = off). With several weights the
    variants take turns step by step, so load changes on a shared machine hit them alike."""
    built = [build(CONFIGS[name][0], stage, w, recipe) for w in cmim_weights]
    size = built[0][1]
    cuda = device == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    views = [torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt) for _ in range(2)]
    indices = torch.arange(batch, device=device)  # sample indices (CMIM's memory variant reads them)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    autocast = torch.autocast(device, dtype=dtype) if (cuda and dtype) else contextlib.nullcontext()
    runs = []
    for method, _, cfg in built:
        method.to(device)
        if cuda:
            method.to(memory_format=torch.channels_last)
        method.train()
        # as the Trainer; with and without CMIM both eager (a CMIM run is never compiled): like against like
        cfg = replace(cfg, lr=1e-4, compile=cfg.compile and len(built) == 1)
        opt, _, active = prepare_step(method, cfg, torch.device(device))
        print(f"  {name} on {device}, CMIM {'on' if cfg.cmim_weight else 'off'}: step optimisations: {active}")
        runs.append((method, opt, torch.amp.GradScaler("cuda", enabled=cuda and dtype is torch.float16), []))
    for i in range(warmup + steps):
        for method, opt, scaler, times in runs:
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            with autocast:
                loss = method([views, None, indices], i, warmup + steps)["loss"]
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t)
    set_malloc_reuse(False)  # process-wide: hand the allocator back before the next config
    out = []
    for w, (_, _, _, times) in zip(cmim_weights, runs):
        med = sorted(times)[len(times) // 2]
        out.append({"config": name, "device": device, "batch": batch, "input": size, "stage": stage,
                    "step_ms": med * 1e3, "images_per_s": batch / med, "amp": amp if cuda else "none",
                    "cmim": w > 0, "recipe": recipe})
    return out


def main(argv=None) -> int:
    p = _bench.args_parser(__doc__)
    p.add_argument("--config", choices=sorted(CONFIGS) + ["all"], default="all", help="which model (default all)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = CPU, plus CUDA when available (default auto)")
    p.add_argument("--batch-size", type=int, default=None, help="images per view (default: per config and device)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5; the median is reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="bf16", help="autocast dtype on GPU (bf16)")
    p.add_argument("--stage", type=int, choices=(1, 2), default=2, help="1 = float weights, 2 = binary (default 2)")
    p.add_argument("--cmim", action="store_true", help="time each config without and with the CMIM term")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="official", help="BURN recipe (default official)")
    args = p.parse_args(argv)
    names = sorted(CONFIGS) if args.config == "all" else [args.config]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    print(f"{'config':16s} {'device':6s} {'batch':>5s} {'input':>5s} {'cmim':>4s} {'step ms':>9s} {'img/s':>8s}")
    for dev in devices:
        for name in names:
            batch = args.batch_size or CONFIGS[name][2 if dev == "cuda" else 1]
            rows = bench(name, dev, batch, args.steps, args.warmup, args.amp, args.stage,
                         (0.0, 3.2) if args.cmim else (0.0,), args.recipe)
            for r in rows:
                print(f"{r['config']:16s} {r['device']:6s} {r['batch']:5d} {r['input']:5d} "
                      f"{'on' if r['cmim'] else 'off':>4s} {r['step_ms']:9.1f} {r['images_per_s']:8.1f}", flush=True)
            if args.cmim:
                print(f"  CMIM overhead: {rows[1]['step_ms'] / rows[0]['step_ms'] - 1:+.1%} step time "
                      f"({rows[0]['images_per_s']:.1f} -> {rows[1]['images_per_s']:.1f} img/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
