"""Does CMIM help on the embedded default? supervised vs supervised + CMIM, BURN vs BURN + CMIM, over seeds.

  python benchmarks/cmim_digits.py --teacher-checkpoint runs/teacher/checkpoint.pt --out runs/cmim
  python benchmarks/cmim_digits.py ... --seeds 0 1 2 --epochs 1 --supervised-epochs 2 --warmup-epochs 0.25

Every row is trained with the digits-tiny preset (plus ``--epochs`` if given) for each seed; the "+ CMIM"
rows differ only by ``--cmim-weight`` (and the preset's other ``--cmim-*`` defaults), so each pair shares
the seed, data order, augmentations and the initial weights of everything but the CMIM heads. BURN rows
run stage 1 -> stage 2 (CMIM in both stages); supervised rows are one stage-2 run from scratch, as in the
main results table. All rows share one teacher checkpoint. Every backbone is evaluated with the linear
probe and weighted kNN (k=20) on the 450-image test split (:func:`train.evaluate.evaluate`).

Finished runs and evaluations are reused (re-running continues where a killed run stopped at the last
finished row). Prints and writes ``<out>/cmim_results.md`` (mean ± sample std over seeds) and
``<out>/cmim_results.json`` (every number).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from common.errors import BurnEdgeError
from train.config import resolve_config
from train.evaluate import EvalConfig, evaluate
from train.pretrain import run

# name -> (label, [(stage name, overrides)], uses CMIM)
ROWS = {
    "supervised": ("supervised (labels)", [("s2", dict(method="supervised", stage=2))], False),
    "supervised-cmim": ("supervised + CMIM", [("s2", dict(method="supervised", stage=2))], True),
    "burn": ("BURN (stage 1 -> 2)", [("s1", dict(method="burn", stage=1)), ("s2", dict(method="burn", stage=2))],
             False),
    "burn-cmim": ("BURN + CMIM (stage 1 -> 2)",
                  [("s1", dict(method="burn", stage=1)), ("s2", dict(method="burn", stage=2))], True),
}


def train_row(name: str, seed: int, args) -> tuple[Path, float]:
    """Train every stage of one row (reusing finished stages); returns (final checkpoint, training seconds)."""
    _, stages, cmim = ROWS[name]
    prev, seconds = None, 0.0
    for stage, overrides in stages:
        out = Path(args.out) / f"{name}-seed{seed}" / stage
        ck = out / "checkpoint.pt"
        extra = dict(cmim_weight=args.cmim_weight) if cmim else {}
        epochs = args.supervised_epochs if overrides["method"] == "supervised" and args.supervised_epochs else \
            args.epochs
        if epochs:
            extra["epochs"] = epochs
        if args.warmup_epochs is not None:
            extra["warmup_epochs"] = args.warmup_epochs
        if not (out / "done.json").is_file():
            print(f"[{name} seed {seed} {stage}] training", flush=True)
            cfg = resolve_config("digits-tiny", **overrides, **extra, seed=seed, out=str(out),
                                 teacher_checkpoint=args.teacher_checkpoint, log_every=1000,
                                 init=str(prev) if prev else None)
            summary = run(cfg)
            (out / "done.json").write_text(json.dumps({"seconds": summary["seconds"], "step": summary["step"]}))
        seconds += json.loads((out / "done.json").read_text())["seconds"]
        prev = ck
    return prev, seconds


def evaluate_row(ck: Path) -> dict:
    cache = ck.parent / "eval.json"
    if not cache.is_file():
        res = evaluate(str(ck), ("linear", "knn"), EvalConfig())
        cache.write_text(json.dumps({"linear": res["linear"]["top1"], "knn": res["knn"]["top1"]}))
    return json.loads(cache.read_text())


def mean_std(xs: list[float]) -> str:
    if not xs:
        return "—"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * statistics.mean(xs):.1f} ± {100 * sd:.1f}"


def format_table(results: dict, args) -> str:
    lines = ["| row | linear top-1 (%) | kNN top-1 (%) | seeds | train s / seed |", "|---|---:|---:|---|---:|"]
    for name, per_seed in results.items():
        if not per_seed:
            continue
        seeds = sorted(per_seed)
        lin = [per_seed[s]["linear"] for s in seeds]
        knn = [per_seed[s]["knn"] for s in seeds]
        secs = statistics.mean(per_seed[s]["seconds"] for s in seeds)
        lines.append(f"| {ROWS[name][0]} | {mean_std(lin)} | {mean_std(knn)} | {','.join(map(str, seeds))} | "
                     f"{secs:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher-checkpoint", required=True,
                   help="MoCo teacher for BURN (python -m train.pretrain --method teacher --preset digits-tiny)")
    p.add_argument("--out", default="runs/cmim", help="folder for the runs and the table (default runs/cmim)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS), help="rows (default all)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per stage (default: the preset's)")
    p.add_argument("--supervised-epochs", type=int, default=None,
                   help="epochs of the one-stage supervised rows (default: --epochs)")
    p.add_argument("--warmup-epochs", type=float, default=None, help="LR warm-up per stage (default: the preset's)")
    p.add_argument("--cmim-weight", type=float, default=0.1, help="alpha of the + CMIM rows (default 0.1)")
    args = p.parse_args(argv)
    results: dict = {name: {} for name in args.rows}
    try:
        for seed in args.seeds:  # seed-major: a killed run still has whole pairs for the first seeds
            for name in args.rows:
                t0 = time.time()
                ck, seconds = train_row(name, seed, args)
                results[name][seed] = {**evaluate_row(ck), "seconds": seconds}
                r = results[name][seed]
                print(f"[{name} seed {seed}] linear {r['linear']:.2%}  kNN {r['knn']:.2%}  "
                      f"(train {seconds:.0f}s, row {time.time() - t0:.0f}s)", flush=True)
                out = Path(args.out)
                (out / "cmim_results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
                (out / "cmim_results.md").write_text(format_table(results, args))
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
