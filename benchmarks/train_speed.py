"""Training throughput of one BURN step (teacher forward, binary forward/backward, Adam update).

  python benchmarks/train_speed.py                       # both configs, CPU (+ GPU when available)
  python benchmarks/train_speed.py --config tiny --steps 20 --device cpu
  python benchmarks/train_speed.py --config reactnet-a-224 --device cuda --batch-size 128 --amp bf16

Inputs are random tensors already in memory, so the numbers are the model step only (no data
loading or augmentation). The teacher runs under no_grad in eval mode, once for both views; on GPU
the step uses channels_last and the chosen autocast dtype, as the engine does.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import torch

from train.config import resolve_config
from train.methods import Burn
from train.methods.common import build_student, random_classifier
from train.models import build_teacher

CONFIGS = {
    # name: (preset, cpu batch, gpu batch)
    "reactnet-a-224": ("imagenet-reactnet-a", 8, 128),
    "tiny": ("digits-tiny", 64, 256),
}


def build(preset: str, stage: int) -> tuple[Burn, int]:
    cfg = resolve_config(preset, method="burn", stage=stage)
    torch.manual_seed(0)
    teacher = build_teacher(cfg.teacher_arch, small_input=cfg.teacher_small_input)
    student = build_student(cfg, cfg.head_dim)
    return Burn(student, teacher, random_classifier(teacher.feature_dim, cfg)), student.cfg.input_size


def bench(name: str, device: str, batch: int, steps: int, warmup: int, amp: str, stage: int) -> dict:
    method, size = build(CONFIGS[name][0], stage)
    cuda = device == "cuda"
    method.to(device)
    if cuda:
        method.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    views = [torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt) for _ in range(2)]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and dtype is torch.float16)
    autocast = torch.autocast(device, dtype=dtype) if (cuda and dtype) else contextlib.nullcontext()
    method.train()
    times = []
    for i in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        with autocast:
            loss = method([views, None], i, warmup + steps)["loss"]
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    return {"config": name, "device": device, "batch": batch, "input": size, "stage": stage,
            "step_ms": med * 1e3, "images_per_s": batch / med, "amp": amp if cuda else "none"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS) + ["all"], default="all", help="which model (default all)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = CPU, plus CUDA when available (default auto)")
    p.add_argument("--batch-size", type=int, default=None, help="images per view (default: per config and device)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5; the median is reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2)")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="bf16", help="autocast dtype on GPU (bf16)")
    p.add_argument("--stage", type=int, choices=(1, 2), default=2, help="1 = float weights, 2 = binary (default 2)")
    args = p.parse_args(argv)
    names = sorted(CONFIGS) if args.config == "all" else [args.config]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    print(f"{'config':16s} {'device':6s} {'batch':>5s} {'input':>5s} {'step ms':>9s} {'img/s':>8s}")
    for dev in devices:
        for name in names:
            batch = args.batch_size or CONFIGS[name][2 if dev == "cuda" else 1]
            r = bench(name, dev, batch, args.steps, args.warmup, args.amp, args.stage)
            print(f"{r['config']:16s} {r['device']:6s} {r['batch']:5d} {r['input']:5d} {r['step_ms']:9.1f} "
                  f"{r['images_per_s']:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
