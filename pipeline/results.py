"""Regenerate the results table: BURN's recipes, its baselines and the paper's ablation, over seeds.

  python -m pipeline.results --preset digits-tiny --out runs/results                  # 3 seeds, every row
  python -m pipeline.results --preset digits-tiny --out runs/results --seeds 0 --no-ablations   # a quick look

Every row is trained once per seed (``--seeds``, default 0 1 2) and evaluated with the linear probe and
weighted kNN (:mod:`train.evaluate`); the table shows mean ± std over the seeds that finished, and the
training throughput (img/s, mean over the run's logged steps). The two float teachers are trained once
(seed 0) and shared by every row and seed. Runs are done seed by seed (every row of seed 0 first), so an
interrupted table still has whole rows; re-running reuses every finished checkpoint and evaluation.
Writes ``<out>/results.json`` (per-seed numbers and each BURN run's KL curve) and ``<out>/results.md``
after every evaluated run.

Several processes may fill one table: give each a disjoint ``--rows`` list and the same ``--out``
(``random-init`` reads the ``burn`` row's checkpoint, so keep the two together). Each finished run is
merged into ``results.json`` under a file lock, and the teachers are trained by whichever process comes
first while the others wait::

  OMP_NUM_THREADS=1 python -m pipeline.results --rows burn random-init burn-paper abl1 abl12 abl123 \
      abl1-fixed-g abl12-fixed-g abl123-fixed-g burn-cmim burn-cmim-inbatch &
  OMP_NUM_THREADS=1 python -m pipeline.results --rows s2bnn supervised-kl supervised supervised-cmim \
      supervised-cmim-any supervised-cmim-inbatch

Rows (digits-tiny: stage = the preset's epochs, or ``--epochs``):

* random init -- a freshly initialised binary net of the same shape (BN statistics re-estimated).
* BURN, recipe ``official`` (the default; g fixed random) and ``paper`` (Eq. 4; g trained jointly):
  stage 1 -> stage 2.
* S2-BNN: stage 1 -> 2. supervised-KL (ReActNet distillation from a float net trained with labels):
  stage 1 -> 2, as ReActNet trains. supervised (labels): stage 1 -> 2 (``--supervised-epochs``).
* Table 5 of the paper, single stage (= stage 2 from scratch): (1) the jointly trained random classifier
  alone (KL only), (1)(2) + FS with a constant lambda, (1)(2)(3) + the dynamic lambda, on recipe
  ``paper`` as the paper trains g; "all" adds the multi-stage schedule and is the burn-paper row. The
  ``-fixed-g`` rows run the same chain on recipe ``official`` (g fixed), whose "all" is the burn row.
* Controls (``burn-random-teacher``, ``s2bnn-random-teacher``): the BURN and S2-BNN rows distilling a
  random-init teacher of the MoCo teacher's architecture (BN statistics re-estimated on the training images,
  as ``train.evaluate --random-init``; S2-BNN's projector random too), written once to ``teacher-random/``.
  A row at or below its control says the trained teacher did not matter.
* CMIM (Shang et al. 2022) piled on, the same stages, seeds and data order as the base rows, with
  ``--cmim-weight`` (default 3.2, the public alpha) and the preset's other ``--cmim-*`` values: the
  public memory variant on supervised (class-aware negatives, and negatives of any class) and on BURN
  (label-free, so negatives of any class), and the inbatch variant on both.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import statistics
import sys
import time
from pathlib import Path

from common.cli import Range, check_options, parse_args
from common.errors import BurnEdgeError, ConfigError
from common.files import atomic_write_text
from train.config import PRESETS, resolve_config
from train.metrics import read_jsonl
from train.pretrain import run

# name -> (label, [(stage, config overrides)] trained in order, each stage initialised from the previous)
RANDOM_TEACHER = "teacher-random"  # teacher-moco's architecture, random weights (teacher_check.write_random_teacher)
TEACHERS = {"teacher-moco": dict(method="teacher"),
            "teacher-supervised": dict(method="teacher", teacher_objective="supervised")}
OFFICIAL, PAPER = dict(method="burn", recipe="official"), dict(method="burn", recipe="paper")
ROWS: dict[str, tuple[str, list[dict]]] = {
    "burn": ("BURN, recipe official (default): g fixed random, FS on the head outputs, KL(target || student)",
             [dict(OFFICIAL, stage=1), dict(OFFICIAL, stage=2)]),
    "random-init": ("random init (binary, same shape as BURN)", []),  # evaluates the BURN row's architecture
    "s2bnn": ("S2-BNN (frozen MoCo head, KL only)", [dict(method="s2bnn", stage=1), dict(method="s2bnn", stage=2)]),
    "supervised-kl": ("supervised-KL (ReActNet distillation, labels)",
                      [dict(method="supervised-kl", stage=1), dict(method="supervised-kl", stage=2)]),
    "supervised": ("supervised (labels)", [dict(method="supervised", stage=1), dict(method="supervised", stage=2)]),
    "burn-paper": ("BURN, recipe paper (Eq. 4): g trained jointly, FS on h(x) vs k(x), KL(student || target) = "
                   "Table 5 all", [dict(PAPER, stage=1), dict(PAPER, stage=2)]),
    # Controls: does the teacher matter? The same rows with a random-init teacher (BN re-estimated).
    "burn-random-teacher": ("control: BURN official, random-init teacher (BN re-estimated)",
                            [dict(OFFICIAL, stage=1, teacher=RANDOM_TEACHER),
                             dict(OFFICIAL, stage=2, teacher=RANDOM_TEACHER)]),
    "s2bnn-random-teacher": ("control: S2-BNN, random-init teacher and projector (BN re-estimated)",
                             [dict(method="s2bnn", stage=1, teacher=RANDOM_TEACHER),
                              dict(method="s2bnn", stage=2, teacher=RANDOM_TEACHER)]),
}
# Table 5 of the paper trains g jointly (its (1) is "joint random classifier"): these rows run recipe paper.
# The "-fixed-g" rows are the same chain on recipe official (g fixed random), whose "all" is the burn row.
ABLATIONS: dict[str, tuple[str, list[dict]]] = {
    "abl1": ("Table 5 (1): g trained jointly, KL only (recipe paper, --fs none, single stage)",
             [dict(PAPER, stage=2, fs="none")]),
    "abl12": ("Table 5 (1)(2): g trained jointly, + FS, constant lambda 0.7 (recipe paper, single stage)",
              [dict(PAPER, stage=2, lam_schedule="constant", lam_start=0.7)]),
    "abl123": ("Table 5 (1)(2)(3): g trained jointly, + dynamic lambda (recipe paper, single stage)",
               [dict(PAPER, stage=2)]),
    "abl1-fixed-g": ("Table 5 (1) with g fixed random: KL only (recipe official, --fs none, single stage)",
                     [dict(OFFICIAL, stage=2, fs="none")]),
    "abl12-fixed-g": ("Table 5 (1)(2) with g fixed random: + FS, constant lambda 0.7 (recipe official, single stage)",
                      [dict(OFFICIAL, stage=2, lam_schedule="constant", lam_start=0.7)]),
    "abl123-fixed-g": ("Table 5 (1)(2)(3) with g fixed random: + dynamic lambda (recipe official, single stage)",
                       [dict(OFFICIAL, stage=2)]),
}
# "cmim": True -> cmim_weight = --cmim-weight (public alpha 3.2); other cmim_* keys are passed through.
CMIM_ROWS: dict[str, tuple[str, list[dict]]] = {
    "supervised-cmim": ("supervised + CMIM (public memory variant, class-aware negatives)",
                        [dict(method="supervised", stage=s, cmim=True) for s in (1, 2)]),
    "supervised-cmim-any": ("supervised + CMIM (memory variant, negatives of any class: as BURN must)",
                            [dict(method="supervised", stage=s, cmim=True, cmim_class_aware="off") for s in (1, 2)]),
    "burn-cmim": ("BURN (recipe official) + CMIM (public memory variant; label-free: negatives of any class)",
                  [dict(OFFICIAL, stage=s, cmim=True) for s in (1, 2)]),
    "supervised-cmim-inbatch": ("supervised + CMIM (inbatch variant: same-pass positive, trained heads)",
                                [dict(method="supervised", stage=s, cmim=True, cmim_variant="inbatch")
                                 for s in (1, 2)]),
    "burn-cmim-inbatch": ("BURN (recipe official) + CMIM (inbatch variant: same-pass positive, trained heads)",
                          [dict(OFFICIAL, stage=s, cmim=True, cmim_variant="inbatch") for s in (1, 2)]),
}
ALL_ROWS = {**ROWS, **ABLATIONS, **CMIM_ROWS}
ALL_ROW = "burn"  # Table 5 "all" = (1)(2)(3) + multi-stage = the default BURN row


def _teacher_for(overrides: dict) -> str:
    if "teacher" in overrides:
        return overrides["teacher"]
    return "teacher-supervised" if overrides["method"] == "supervised-kl" else "teacher-moco"


def _kl_curve(run_dir: Path) -> dict | None:
    """KL at the first logged step, at the end of each epoch and at the end (from metrics.jsonl)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = [r for r in read_jsonl(path) if "kl" in r]
    if not rows:
        return None
    ends = {}
    for r in rows:
        ends[int(r["epoch"])] = r["kl"]
    return {"first": rows[0]["kl"], "epoch_end": [ends[e] for e in sorted(ends)]}


def _throughput(run_dir: Path) -> float | None:
    """Mean training img/s (wall clock of the training loop, data loading included; an image = one sample,
    whatever its number of views) over every logged interval of every stage under ``run_dir``."""
    rates = [r["img_per_s"] for d in sorted(run_dir.glob("stage*")) if (d / "metrics.jsonl").is_file()
             for r in read_jsonl(d / "metrics.jsonl") if r.get("img_per_s")]
    return statistics.fmean(rates) if rates else None


class ResultsFile:
    """``<out>/results.json`` shared by concurrent processes: every read-modify-write holds an exclusive
    ``fcntl`` lock on ``<out>/results.lock``, so two processes filling disjoint rows never lose a run."""

    def __init__(self, out: Path):
        self.out, self.path = out, out / "results.json"
        out.mkdir(parents=True, exist_ok=True)

    def locked(self):
        """Context manager: the exclusive lock (held while training the shared teachers, too)."""
        return _FileLock(self.out / "results.lock")

    def read(self) -> dict:
        results = json.loads(self.path.read_text()) if self.path.is_file() else {}
        results.setdefault("runs", {})
        return results

    def record(self, name: str, seed: int, entry: dict, render=None, *, lock: bool = True,
               table_args: dict | None = None) -> dict:
        """Merge one run into the file (re-read under the lock; ``lock=False`` when the caller holds it), then
        ``render(merged results)`` still under the lock (the table, so it never lags another process's run).
        ``table_args``: the arguments the table is generated with (``TABLE_ARGS``), stored as ``"args"``."""
        with self.locked() if lock else contextlib.nullcontext():
            results = self.read()
            results["runs"].setdefault(name, {})[str(seed)] = entry
            if table_args is not None:
                results["args"] = table_args
            atomic_write_text(self.path, json.dumps(results, indent=1))
            if render is not None:
                render(results)
        return results


class _FileLock:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fh = open(self.path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def mean_std(values: list[float]) -> tuple[float, float]:
    """(mean, sample std) of ``values``; std is 0 for a single value."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def results_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m pipeline.results`` (also what a recorded table's arguments default to)."""
    p = argparse.ArgumentParser(prog="python -m pipeline.results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits-tiny", choices=sorted(PRESETS), help="preset (default digits-tiny)")
    p.add_argument("--out", default="runs/results", help="folder for the runs and the table (default runs/results)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds per row (default 0 1 2)")
    p.add_argument("--rows", nargs="+", choices=list(ALL_ROWS), default=None, metavar="ROW",
                   help=f"train and evaluate only these rows (default: all but --no-ablations); one of "
                        f"{', '.join(ALL_ROWS)}")
    p.add_argument("--no-ablations", dest="ablations", action="store_false", help="skip the Table 5 rows")
    p.add_argument("--cmim-weight", type=float, default=3.2,
                   help="alpha of the + CMIM rows (default 3.2, the public CMIM code's, on top of cross entropy)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every binary training stage (default: preset)")
    p.add_argument("--supervised-epochs", type=int, default=None,
                   help="epochs of each supervised (labels) stage (default: --epochs)")
    p.add_argument("--warmup-epochs", type=float, default=None,
                   help="learning-rate warm-up of every stage, in epochs (default: preset)")
    p.add_argument("--data-root", default=None, help="data folder for non-embedded data sets")
    return p


TABLE_ARGS = ("preset", "seeds", "cmim_weight", "epochs", "supervised_epochs", "warmup_epochs")  # what the table says


def main(argv=None) -> int:
    args = parse_args(results_parser(), argv)  # one-line argparse errors (common.cli)
    try:  # before any training: NaN, inf or out-of-range numbers are one error line
        check_options(args, {"seeds": Range(0, 2**32 - 1, integer=True), "cmim_weight": Range(0),
                             "epochs": Range(1, 1 << 30, integer=True),
                             "supervised_epochs": Range(1, 1 << 30, integer=True), "warmup_epochs": Range(0)})
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from train.evaluate import EvalConfig, evaluate  # after parsing: --help needs no torch

    out = Path(args.out)
    rows = select_rows(args.rows, args.ablations)
    try:
        store = ResultsFile(out)
        base = {} if args.data_root is None else {"data_root": args.data_root}
        teachers = {name: out / name / "checkpoint.pt" for name in (*TEACHERS, RANDOM_TEACHER)}
        with store.locked():  # a second process waits here until the first has trained the teachers
            for name, overrides in TEACHERS.items():
                if not teachers[name].is_file():
                    print(f"[{name}] training (shared by every row and seed)", flush=True)
                    run(resolve_config(args.preset, **overrides, **base, seed=0, out=str(teachers[name].parent)))
            if not teachers[RANDOM_TEACHER].is_file():
                from train.teacher_check import write_random_teacher  # torch: imported when needed (fast --help)

                write_random_teacher(str(teachers["teacher-moco"]), teachers[RANDOM_TEACHER], seed=0)
            for name in ("teacher-moco", RANDOM_TEACHER):
                if name not in store.read()["runs"]:
                    store.record(name, 0, evaluate(str(teachers[name]), ("linear", "knn"),
                                                   EvalConfig(data_root=args.data_root)), lock=False)
        for seed, name in schedule(args.seeds, list(rows)):
            if str(seed) in store.read()["runs"].get(name, {}):
                continue
            t0 = time.time()
            run_dir = out / name / f"seed{seed}"
            ckpt = _train_row(args, run_dir, rows[name][1], seed, teachers, base)
            src = ckpt or out / ALL_ROW / f"seed{seed}" / "stage2" / "checkpoint.pt"  # random init: same shape
            if ckpt is None and not src.is_file():
                raise ConfigError(f"row random-init evaluates the burn row's seed-{seed} network: train row burn "
                                  f"first (put both in the same --rows list)")
            r = evaluate(str(src), ("linear", "knn"), EvalConfig(random_init=ckpt is None, seed=seed,
                                                                  data_root=args.data_root))
            r["kl"] = {d.name: curve for d in sorted(run_dir.glob("stage*"))
                       if (curve := _kl_curve(d))} if ckpt is not None else {}
            r["img_per_s"] = _throughput(run_dir) if ckpt is not None else None
            r["seconds"] = round(time.time() - t0, 1)
            print(f"[{name} seed {seed}] linear {r['linear']['top1']:.2%}  kNN {r['knn']['top1']:.2%} "
                  f"({r['seconds']:.0f}s)", flush=True)
            store.record(name, seed, r, lambda res: atomic_write_text(out / "results.md", format_table(res, args)),
                         table_args={k: getattr(args, k) for k in TABLE_ARGS})
        print(format_table(store.read(), args))
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def select_rows(names: list[str] | None, ablations: bool = True) -> dict[str, tuple[str, list[dict]]]:
    """The rows to run, in table order: ``names`` (any of ALL_ROWS), or every row (less the ablations)."""
    if names is None:
        names = [n for n in ALL_ROWS if ablations or n not in ABLATIONS]
    unknown = [n for n in names if n not in ALL_ROWS]
    if unknown:
        raise ConfigError(f"unknown rows {unknown}; choose from {list(ALL_ROWS)}")
    return {n: ALL_ROWS[n] for n in ALL_ROWS if n in names}


KEY_ROWS = ("burn", "random-init", "s2bnn", "supervised-kl", "supervised", "abl1")  # what the goal is stated on


def schedule(seeds: list[int], rows: list[str]) -> list[tuple[int, str]]:
    """(seed, row) in training order: every row of the first seed (key rows first: one whole table), then
    the key rows of the other seeds, then the rest, so that an interrupted run has the most useful rows."""
    first, rest = seeds[:1], seeds[1:]
    key = [r for r in rows if r in KEY_ROWS]
    rows = key + [r for r in rows if r not in KEY_ROWS]
    return ([(s, r) for s in first for r in rows] + [(s, r) for s in rest for r in key]
            + [(s, r) for s in rest for r in rows if r not in KEY_ROWS])


def _train_row(args, run_dir: Path, stages: list[dict], seed: int, teachers: dict, base: dict) -> Path | None:
    """Train a row's stages in order (each from the previous one's checkpoint); the last checkpoint."""
    init = None
    for overrides in stages:
        stage_dir = run_dir / f"stage{overrides['stage']}"
        ck = stage_dir / "checkpoint.pt"
        if not ck.is_file():
            epochs = args.supervised_epochs if overrides["method"] == "supervised" else None
            epochs = epochs or args.epochs
            extra = {k: v for k, v in (("epochs", epochs), ("warmup_epochs", args.warmup_epochs)) if v is not None}
            overrides = dict(overrides)
            teacher = teachers[_teacher_for(overrides)]
            overrides.pop("teacher", None)
            if overrides.pop("cmim", False):
                extra["cmim_weight"] = args.cmim_weight
            cfg = resolve_config(args.preset, **overrides, **base, **extra, seed=seed, out=str(stage_dir),
                                 teacher_checkpoint=str(teacher),
                                 init=str(init) if init else None)
            print(f"[{run_dir.parent.name} seed {seed}] stage {overrides['stage']}", flush=True)
            run(cfg)
        init = ck
    return init


def _cell(ms: tuple[float, float], n: int) -> str:
    """``mean ± std`` in percent; a single seed has no spread, so just the value."""
    return f"{ms[0]:.1f} ± {ms[1]:.1f}" if n > 1 else f"{ms[0]:.1f}"


def format_table(results: dict, args) -> str:
    """Markdown: one line per row of ALL_ROWS that has results or was asked for (``args.rows``)."""
    runs = results.get("runs", {})
    wanted = select_rows(args.rows, args.ablations)
    rows = {n: v for n, v in ALL_ROWS.items() if n in wanted or runs.get(n)}
    cmd = f"python -m pipeline.results --preset {args.preset} --seeds " + " ".join(map(str, args.seeds)) + \
        f" --cmim-weight {args.cmim_weight:g}" + \
        (f" --epochs {args.epochs}" if args.epochs else "") + \
        (f" --supervised-epochs {args.supervised_epochs}" if args.supervised_epochs else "") + \
        (f" --warmup-epochs {args.warmup_epochs}" if args.warmup_epochs is not None else "")
    lines = [f"Generated by `{cmd}`: linear probe and weighted kNN (k=20), top-1 on the test split, "
             "mean ± std over n seeds.", "",
             "| row | n | linear top-1 | kNN top-1 | KL after epoch 1 (first stage) | train img/s |",
             "|---|---:|---:|---:|---:|---:|"]
    labels = {"teacher-moco": "float teacher h (MoCo-v2, reference; trained once)",
              RANDOM_TEACHER: "float teacher h, random init (BN re-estimated; the controls' teacher)",
              **{k: v[0] for k, v in rows.items()}}
    for name, label in labels.items():
        per_seed = list(runs.get(name, {}).values())
        if not per_seed:
            lines.append(f"| {label} | 0 | not run | not run | | |")
            continue
        lin = _cell(mean_std([100 * r["linear"]["top1"] for r in per_seed]), len(per_seed))
        knn = _cell(mean_std([100 * r["knn"]["top1"] for r in per_seed]), len(per_seed))
        kls = [next(iter(r["kl"].values()))["epoch_end"][0] for r in per_seed if r.get("kl")]
        kl = f"{mean_std(kls)[0]:.3f}" if kls else ""
        rates = [r["img_per_s"] for r in per_seed if r.get("img_per_s")]
        rate = f"{mean_std(rates)[0]:.0f}" if rates else ""
        lines.append(f"| {label} | {len(per_seed)} | {lin} | {knn} | {kl} | {rate} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
