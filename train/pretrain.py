"""Pretrain a binary ReActNet-A (BURN and baselines) or its float teacher.

Methods (``--method``):
  burn           BURN: frozen teacher h + a random classifier g on it as the target; g stays fixed in the
                 default recipe (official, as the official code), --recipe paper trains it jointly (Alg. 1)
  s2bnn          S2-BNN baseline: frozen teacher with its pretrained (MoCo) head, KL only
  supervised-kl  ReActNet-style distillation from a float net trained with labels
  supervised     the binary net trained with labels (cross entropy)
  teacher        float teacher h: MoCo-v2 (default) or supervised (--teacher-objective supervised)

The embedded default (digits, 2 CPU cores, a few minutes in all)::

  python -m train.pretrain --method teacher --preset digits-tiny --out runs/teacher
  python -m train.pretrain --method burn --preset digits-tiny --stage 1 \\
      --teacher-checkpoint runs/teacher/checkpoint.pt --out runs/burn-s1
  python -m train.pretrain --method burn --preset digits-tiny --stage 2 \\
      --teacher-checkpoint runs/teacher/checkpoint.pt --init runs/burn-s1/checkpoint.pt --out runs/burn-s2

The paper's ImageNet run (MoCo-v2 ResNet-50 teacher; 8 GPUs, then 2 nodes x 8 GPUs)::

  torchrun --nproc_per_node 8 -m train.pretrain --method burn --preset imagenet-reactnet-a --stage 1 \\
      --data-root /data/imagenet --teacher-checkpoint moco_v2_800ep_pretrain.pth.tar --out runs/in-s1
  torchrun --nnodes 2 --node_rank $NODE --master_addr $HOST --nproc_per_node 8 -m train.pretrain ...

``--batch-size`` is per process: the global batch is batch-size x processes x accum-steps. Interrupted
runs continue with ``--resume <out>/checkpoint.pt``: the stored config is reused, and only run-control
flags (--out, --device, --num-workers, --log-every, --save-every, --tensorboard) may be given.
Writes <out>/checkpoint.pt, config.json, metrics.jsonl and metrics.csv; a MoCo teacher run also checks that
the teacher learned (InfoNCE vs chance, view invariance, kNN vs its random-init twin) and writes
<out>/teacher_check.json (--no-teacher-check skips it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# torch and the training modules are imported where they are used, so --help answers at once.
from common.cli import ArgumentParser, check_options, parse_args
from common.errors import BurnEdgeError, ConfigError
from common.files import atomic_write_text, ensure_writable_dir, refuse_same_path
from train.config import PRESETS, RANGES, RECIPES, PretrainConfig, add_config_arguments, config_fields, resolve_config

# Flags that may differ when resuming (they do not change the computation).
RUN_CONTROL = ("out", "device", "num_workers", "log_every", "save_every", "tensorboard", "resume", "teacher_check")


def _selection(argv: Sequence[str] | None) -> tuple[str | None, str, str]:
    """(preset, method, recipe) named in ``argv`` (unknown values fall back to the defaults)."""
    p = ArgumentParser(prog="python -m train.pretrain", add_help=False)  # one-line errors (common.cli)
    for flag in ("--preset", "--method", "--recipe"):
        p.add_argument(flag)
    known = p.parse_known_args(list(argv or []))[0]
    preset = known.preset if known.preset in PRESETS else None
    method = known.method or PretrainConfig.method
    recipe = known.recipe if known.recipe in RECIPES else PretrainConfig.recipe
    return preset, method, recipe


def resolved_defaults(preset: str | None, method: str, recipe: str) -> dict[str, str]:
    """Help text for every field's default: the value a run with this preset/method/recipe gets, and where it
    comes from (the preset, the recipe or the built-in default); without a preset, what each preset would set."""
    try:
        cfg = resolve_config(preset, method=method, recipe=recipe)
    except (ConfigError, TypeError):
        return {}
    by_preset = {name: resolve_config(name, method=method, recipe=recipe) for name in sorted(PRESETS)}
    preset_keys = {**PRESETS[preset].get("*", {}), **PRESETS[preset].get(method, {})} if preset else {}
    recipe_keys = RECIPES[recipe] if method == "burn" else {}
    out = {}
    for f in config_fields():
        value = getattr(cfg, f.name)
        if f.name in recipe_keys:
            src = f" from --recipe {recipe}"
        elif f.name in preset_keys:
            src = f" from --preset {preset}"
        else:
            src = ""
        text = f"default: {value}{src}"
        if preset is None and f.name not in recipe_keys:
            others = [f"{name}: {getattr(c, f.name)}" for name, c in by_preset.items()
                      if getattr(c, f.name) != value]
            if others:
                text += f"; with --preset {', '.join(others)}"
        out[f.name] = text.replace("%", "%%")
    return out


def get_args_parser(add_help: bool = True, argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The CLI parser; the defaults its help shows are those of the --preset/--method/--recipe in ``argv``."""
    preset, method, recipe = _selection(argv)
    shown = f"--method {method}" + (f" --recipe {recipe}" if method == "burn" else "")
    shown += f" --preset {preset}" if preset else " without --preset"
    p = argparse.ArgumentParser(prog="python -m train.pretrain", description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"Defaults shown are the values a run with {shown} uses; put --preset, "
                                       "--method or --recipe before --help to see theirs.")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="named settings: digits-tiny (embedded default) or imagenet-reactnet-a (the paper); "
                        "explicit flags override it (default: none, the built-in defaults below)")
    add_config_arguments(p, resolved_defaults(preset, method, recipe))
    return p


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    from train.checkpoint import read_checkpoint

    overrides = {k: v for k, v in vars(args).items() if k != "preset" and v is not None}
    if overrides.get("resume"):
        stored = read_checkpoint(overrides["resume"]).get("config")
        if not isinstance(stored, dict):
            raise ConfigError(f"--resume {overrides['resume']}: checkpoint holds no run config")
        gone = sorted(set(stored) - {f.name for f in config_fields()})
        if gone:
            raise ConfigError(f"--resume {overrides['resume']}: written by another version of burn-edge (its options "
                              f"{gone} no longer exist); resume it with that version")
        changed = {k: (stored.get(k), v) for k, v in overrides.items()
                   if k not in RUN_CONTROL and stored.get(k) != v}
        if changed:
            raise ConfigError(f"--resume: these options differ from the interrupted run (stored, given): {changed}")
        return PretrainConfig(**{**stored, **overrides})
    return resolve_config(args.preset, **overrides)


def check_outputs(cfg: PretrainConfig) -> None:
    """Before training: ``--out`` must be a writable folder and its checkpoint must not be one of the run's
    inputs (``--init``, ``--teacher-checkpoint``; ``--resume`` continues in place on purpose)."""
    from train.engine import CHECKPOINT_NAME

    ensure_writable_dir(cfg.out, "--out folder")
    ckpt = Path(cfg.out) / CHECKPOINT_NAME
    refuse_same_path(ckpt, cfg.init, what=f"--out {cfg.out}: its {CHECKPOINT_NAME}")
    refuse_same_path(ckpt, cfg.teacher_checkpoint, what=f"--out {cfg.out}: its {CHECKPOINT_NAME}")


def check_teacher(cfg: PretrainConfig, summary: dict) -> dict:
    """After a MoCo teacher run: did it learn? (:mod:`train.teacher_check`: InfoNCE vs chance, view gap, kNN vs
    its random-init twin). Prints the three checks and writes ``<out>/teacher_check.json``."""
    from train.teacher_check import final_loss, format_evidence, teacher_evidence

    t0 = time.perf_counter()
    spe = max(1, summary["total_steps"] // cfg.epochs)
    ev = teacher_evidence(summary["checkpoint"], loss=final_loss(cfg.out, spe), queue_size=cfg.moco_k,
                          augment=cfg.augment, crop_min_scale=cfg.crop_min_scale, hflip=cfg.hflip, seed=cfg.seed,
                          limit=cfg.limit_train)
    ev["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_text(Path(cfg.out) / "teacher_check.json", json.dumps(ev, indent=1))
    print(format_evidence(ev))
    print(f"teacher check: {'PASSED' if ev['passed'] else 'FAILED (the teacher did not learn enough)'} "
          f"({ev['seconds']:.0f}s) -> {Path(cfg.out) / 'teacher_check.json'}")
    return ev


def run(cfg: PretrainConfig, on_step=None) -> dict:
    """Train per ``cfg`` (in this process; joins torchrun's group when launched by torchrun)."""
    from train.dist import cleanup, init_from_env
    from train.engine import fit
    from train.methods import build_method
    from train.rng import seed_everything

    dinfo = init_from_env(cfg.device)
    try:
        seed_everything(cfg.seed)
        method = build_method(cfg)
        if dinfo.is_main:
            check_outputs(cfg)
            atomic_write_text(Path(cfg.out) / "config.json", json.dumps(cfg.to_dict(), indent=1))
            n_train = sum(p.numel() for p in method.parameters() if p.requires_grad)
            what = (f"teacher ({cfg.teacher_objective}, {cfg.teacher_arch})" if cfg.method == "teacher"
                    else f"{cfg.method} stage {cfg.stage}")
            print(f"{what} on {cfg.dataset}: {n_train:,} trainable parameters, "
                  f"{dinfo.world_size} process(es) on {dinfo.device}, out={cfg.out}")
        summary = fit(cfg, method, dinfo, on_step=on_step)
        if dinfo.is_main:
            print(f"done: {summary['step']} steps in {summary['seconds']:.0f}s, final loss "
                  f"{summary.get('loss', float('nan')):.4f} -> {summary['checkpoint']}")
            if cfg.method == "teacher" and cfg.teacher_objective == "moco" and cfg.teacher_check:
                summary["teacher_check"] = check_teacher(cfg, summary)
        return summary
    finally:
        cleanup()


def main(argv=None) -> int:
    """CLI entry point; returns 0 on success, 2 (one ``error:`` line) on a user error."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(get_args_parser(argv=argv), argv)  # one-line argparse errors (common.cli)
    try:
        check_options(args, RANGES)  # NaN, inf, out-of-range numbers: one error line before any work
        run(config_from_args(args))
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
