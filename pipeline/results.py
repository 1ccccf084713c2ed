"""Regenerate the results table: BURN vs its baselines (and the ablations) on one preset.

  python -m pipeline.results --preset digits-tiny --out runs/results            # main rows
  python -m pipeline.results --preset digits-tiny --out runs/results --ablations

Trains every row that has no checkpoint under ``--out`` yet (re-running reuses finished rows), evaluates
each binary backbone with the linear probe and weighted kNN (:mod:`train.evaluate`), and writes
``<out>/results.json`` and ``<out>/results.md`` (the Markdown table in docs/training.md).

Rows: the float MoCo teacher (reference); a randomly initialised binary net of the same shape; BURN
stage 1 and stage 1 -> 2; S2-BNN stage 1 -> 2; supervised-KL (ReActNet-style distillation from a float
net trained with labels) and plain supervised training, each a single stage-2 run. Ablations (Table 5
of the paper, single-stage = stage 2 from scratch): (1) joint classifier only (no FS), (2) + FS with a
constant lambda, (3) + dynamic lambda, (4) + multi-stage (= BURN), and BURN with g frozen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common.errors import BurnEdgeError
from train.config import PRESETS, resolve_config
from train.evaluate import EvalConfig, evaluate
from train.pretrain import run


def _rows(ablations: bool) -> list[tuple[str, dict, str | None]]:
    """(name, config overrides, name of the row whose checkpoint is --init) in training order."""
    rows = [
        ("teacher-moco", dict(method="teacher"), None),
        ("teacher-supervised", dict(method="teacher", teacher_objective="supervised"), None),
        ("burn-stage1", dict(method="burn", stage=1), None),
        ("burn", dict(method="burn", stage=2), "burn-stage1"),
        ("s2bnn-stage1", dict(method="s2bnn", stage=1), None),
        ("s2bnn", dict(method="s2bnn", stage=2), "s2bnn-stage1"),
        ("supervised-kl", dict(method="supervised-kl", stage=2), None),
        ("supervised", dict(method="supervised", stage=2), None),
    ]
    if ablations:
        rows += [
            ("abl1-joint-classifier", dict(method="burn", stage=2, fs="none"), None),
            ("abl2-plus-fs-constant", dict(method="burn", stage=2, lam_schedule="constant", lam_start=0.7), None),
            ("abl3-plus-dynamic-lambda", dict(method="burn", stage=2), None),
            ("burn-frozen-g", dict(method="burn", stage=2, freeze_classifier=True), "burn-stage1-frozen-g"),
        ]
        rows.insert(len(rows) - 1, ("burn-stage1-frozen-g", dict(method="burn", stage=1, freeze_classifier=True),
                                    None))
    return rows


LABELS = {
    "teacher-moco": "float teacher h (MoCo-v2, reference)",
    "random-init": "random init (binary, same shape)",
    "burn-stage1": "BURN stage 1 (binary activations)",
    "burn": "BURN (stage 1 -> 2)",
    "s2bnn": "S2-BNN (stage 1 -> 2)",
    "supervised-kl": "supervised-KL (ReActNet distillation, labels)",
    "supervised": "supervised (labels)",
    "abl1-joint-classifier": "(1) joint classifier only",
    "abl2-plus-fs-constant": "(2) + FS, constant lambda 0.7",
    "abl3-plus-dynamic-lambda": "(3) + dynamic lambda",
    "burn-frozen-g": "BURN with g frozen (stage 1 -> 2)",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits-tiny", choices=sorted(PRESETS), help="preset (default digits-tiny)")
    p.add_argument("--out", default="runs/results", help="folder for the runs and the table (default runs/results)")
    p.add_argument("--ablations", action="store_true", help="also train the ablation rows")
    p.add_argument("--epochs", type=int, default=None, help="override every run's epochs (quick looks)")
    p.add_argument("--data-root", default=None, help="data folder for non-embedded data sets")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        extra = {k: v for k, v in (("epochs", args.epochs), ("data_root", args.data_root)) if v is not None}
        ck = {}
        for name, overrides, init in _rows(args.ablations):
            ck[name] = out / name / "checkpoint.pt"
            if ck[name].is_file():
                print(f"[{name}] reusing {ck[name]}")
                continue
            teacher = "teacher-supervised" if overrides["method"] == "supervised-kl" else "teacher-moco"
            cfg = resolve_config(args.preset, **overrides, **extra, out=str(out / name),
                                 teacher_checkpoint=None if overrides["method"] == "teacher" else str(ck[teacher]),
                                 init=str(ck[init]) if init else None)
            print(f"[{name}] training")
            run(cfg)
        results = {}
        eval_rows = [("teacher-moco", "teacher-moco", False), ("random-init", "burn", True)] + \
            [(n, n, False) for n in LABELS if n not in ("teacher-moco", "random-init") and n in ck]
        for name, src, rnd in eval_rows:
            t0 = time.time()
            results[name] = evaluate(str(ck[src]), ("linear", "knn"), EvalConfig(random_init=rnd,
                                                                                  data_root=args.data_root))
            print(f"[{name}] linear {results[name]['linear']['top1']:.2%}  kNN {results[name]['knn']['top1']:.2%} "
                  f"({time.time() - t0:.0f}s)")
        (out / "results.json").write_text(json.dumps(results, indent=1))
        (out / "results.md").write_text(format_table(results, args))
        print(format_table(results, args))
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def format_table(results: dict, args) -> str:
    cmd = f"python -m pipeline.results --preset {args.preset} --out {args.out}" + \
        (" --ablations" if args.ablations else "") + (f" --epochs {args.epochs}" if args.epochs else "")
    lines = [f"Generated by `{cmd}` (linear probe and weighted kNN, k=20, top-1 on the test split).", "",
             "| row | linear top-1 | kNN top-1 |", "|---|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {LABELS.get(name, name)} | {r['linear']['top1']:.1%} | {r['knn']['top1']:.1%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
