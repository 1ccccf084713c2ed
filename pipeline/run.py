"""The whole burn-edge chain, offline, on the embedded default -- README's first command.

    python -m pipeline                       # digits-tiny preset, everything, into runs/pipeline
    python -m pipeline --phases export verify bench report   # re-run later phases only
    python -m pipeline --preset imagenet-reactnet-a --data-root /data/imagenet --out runs/in

Phases (each reads the previous phases' files from --out, so any phase can run alone):

  teacher   float teacher h: MoCo-v2-style self-supervised ResNet      -> teacher/checkpoint.pt,
            and the check that it learned (InfoNCE, view gap, kNN)        teacher/teacher_check.json
            (or --teacher-checkpoint: a MoCo-v2 / torchvision / burn-edge checkpoint, phase skipped)
  stage1    BURN stage 1: binary activations, float weights            -> stage1/checkpoint.pt
            (recipe official: fixed random g, as the official code; --recipe paper: g trained jointly)
  stage2    BURN stage 2: binary weights too, from stage 1 (phi and g)  -> stage2/checkpoint.pt
  evaluate  linear probe + kNN of stage 1, stage 2 and a random-init     -> eval.json,
            binary net; the stage-2 net with its linear probe folded      classifier/checkpoint.pt
            in as the head is the deployable classifier
  export    classifier -> ONNX, LCE TFLite (+ converter audit), float    -> export/model.onnx, model.tflite,
            TFLite twin (+ the Android demo's assets: --android-assets)     model_float.tflite, *.audit.json
  verify    PyTorch vs onnxruntime vs LCE (3 kernels), block by block     -> verify.json, verify_blocks.png
  bench     latency of the three models on this host                     -> bench.json, bench.csv
  arm       every LceBconv2d on LCE's own aarch64 kernels under qemu      -> arm.json
            (python -m runtimes.arm): per-layer verdicts, aarch64
            instruction counts vs the float twin; without qemu, the
            cross g++ or the LCE sources, each layer says why not
  report    markdown + PNGs (training curves, accuracy, latency, error)  -> report/README.md

Before each phase it prints the phase's expected duration and the time left in all (the previous run's
timings.json in --out, else digits-tiny estimates for a 2-core CPU).

Exit status: 0 when every phase ran and the equivalence gate passed (verify, and the ARM lane where it
ran); 1 if the gate failed; 2 on a user error (one ``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from common.cli import Range, check_options, parse_args
from common.errors import BurnEdgeError, CheckpointError
from common.files import atomic_write_text
from common.limits import thread_limit
from pipeline.run_info import load_1min, run_info

PHASES = ("teacher", "stage1", "stage2", "evaluate", "export", "verify", "bench", "arm", "report")

# Estimated seconds per phase of the digits-tiny preset on an idle 2-core x86 CPU: the measured run of `python -m
# pipeline` from a fresh clone in docs/pipeline-run.json (teacher 152 s with its check, BURN stages 76 + 67 s,
# evaluate 3 s, export 43 s, verify 5 s, bench 9 s, arm 19 s, report 1 s; 6 min 14 s in all), rounded up; arm
# allows for the first run's build of the lane's driver (about a minute; 0 s without qemu or the sources).
# A run's own timings.json, when --out holds one, replaces them.
EXPECTED_S = {"teacher": 160, "stage1": 80, "stage2": 80, "evaluate": 10, "export": 50, "verify": 10,
              "bench": 15, "arm": 80, "report": 5}


def expected_seconds(args, timings: dict) -> dict[str, float | None]:
    """Expected duration per phase: the last run's timings.json in --out, else the digits-tiny figures above
    (BURN stages scaled by --epochs / 10); None where nothing is known (other presets)."""
    out: dict[str, float | None] = {}
    for ph in PHASES:
        if ph in timings:
            out[ph] = float(timings[ph])
        elif args.preset == "digits-tiny":
            scale = (args.epochs / 10) if args.epochs and ph in ("stage1", "stage2") else \
                (args.epochs / 3) if args.epochs and ph == "teacher" else 1.0
            out[ph] = EXPECTED_S[ph] * scale
        else:
            out[ph] = None
    if args.teacher_checkpoint:
        out["teacher"] = 0.0
    return out


def _mmss(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class Paths:
    """Where each phase writes (all under --out)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.teacher = self.out / "teacher" / "checkpoint.pt"
        self.stage1 = self.out / "stage1" / "checkpoint.pt"
        self.stage2 = self.out / "stage2" / "checkpoint.pt"
        self.eval = self.out / "eval.json"
        self.classifier = self.out / "classifier" / "checkpoint.pt"
        self.export = self.out / "export"
        self.onnx = self.export / "model.onnx"
        self.lce = self.export / "model.tflite"
        self.float = self.export / "model_float.tflite"
        self.verify = self.out / "verify.json"
        self.verify_png = self.out / "verify_blocks.png"
        self.bench = self.out / "bench.json"
        self.arm = self.out / "arm.json"
        self.report = self.out / "report"


def _need(path: Path, phase: str) -> Path:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: run the {phase!r} phase first (--phases {phase} ...)")
    return path


def _train(args, paths: Paths, **overrides) -> None:
    from train.config import resolve_config
    from train.pretrain import run

    extra = {} if args.epochs is None else {"epochs": args.epochs}
    run(resolve_config(args.preset, data_root=args.data_root, device=args.device, **overrides, **extra))


def phase_teacher(args, paths: Paths) -> dict:
    if args.teacher_checkpoint:
        return {"skipped": f"using --teacher-checkpoint {args.teacher_checkpoint}"}
    _train(args, paths, method="teacher", out=str(paths.teacher.parent))
    return {}


def _teacher(args, paths: Paths) -> str:
    return args.teacher_checkpoint or str(_need(paths.teacher, "teacher"))


def phase_stage1(args, paths: Paths) -> dict:
    _train(args, paths, method="burn", stage=1, recipe=args.recipe, teacher_checkpoint=_teacher(args, paths),
           out=str(paths.stage1.parent))
    return {}


def phase_stage2(args, paths: Paths) -> dict:
    _train(args, paths, method="burn", stage=2, recipe=args.recipe, teacher_checkpoint=_teacher(args, paths),
           init=str(_need(paths.stage1, "stage1")), out=str(paths.stage2.parent))
    return {}


def phase_evaluate(args, paths: Paths) -> dict:
    from train.checkpoint import read_checkpoint, save_checkpoint
    from train.evaluate import EvalConfig, classifier_payload, deployable_classifier, evaluate

    protocols = ("linear", "knn")
    ecfg = EvalConfig(dataset=None, data_root=args.data_root)
    # The deployable classifier: the stage-2 binary backbone with its linear probe folded into the head.
    res, model, _ = deployable_classifier(str(_need(paths.stage2, "stage2")), protocols, ecfg)
    res = {"burn-stage2": res}
    for name, ck, rnd in [("burn-stage1", paths.stage1, False), ("random-init", paths.stage2, True)]:
        res[name] = evaluate(str(_need(ck, "stage2" if ck == paths.stage2 else "stage1")), protocols,
                             replace(ecfg, random_init=rnd))
    for name in ("burn-stage2", "burn-stage1", "random-init"):
        print(f"  {name:12s} linear {res[name]['linear']['top1']:.1%}  kNN {res[name]['knn']['top1']:.1%}")
    save_checkpoint(paths.classifier, classifier_payload(model, read_checkpoint(paths.stage2)))
    acc = res["burn-stage2"].pop("classifier")["test_top1"]
    res["classifier"] = {"test_top1": acc, "checkpoint": str(paths.classifier)}
    print(f"  classifier   top-1 {acc:.1%} (stage-2 binary net + folded linear probe)")
    atomic_write_text(paths.eval, json.dumps(res, indent=1))
    print(f"wrote {paths.eval}, {paths.classifier}")
    return {"eval": str(paths.eval)}


def phase_export(args, paths: Paths) -> dict:
    from export import to_lce, to_onnx

    ck = str(_need(paths.classifier, "evaluate"))
    paths.export.mkdir(parents=True, exist_ok=True)
    for name, rc in [("onnx", to_onnx.main([ck, "-o", str(paths.onnx)])),
                     ("lce", to_lce.main([ck, "-o", str(paths.lce)])),
                     ("float tflite", to_lce.main([ck, "-o", str(paths.float), "--float"]))]:
        if rc != 0:
            raise BurnEdgeError(f"{name} export failed (exit {rc})")
    if args.android_assets:
        from export import android_assets

        if android_assets.main(["--lce", str(paths.lce), "--float", str(paths.float), "--checkpoint", ck,
                                "-o", args.android_assets]) != 0:
            raise BurnEdgeError("writing the Android assets failed (see above)")
    return {k: p.stat().st_size for k, p in [("onnx", paths.onnx), ("lce", paths.lce), ("float", paths.float)]}


def phase_verify(args, paths: Paths) -> dict:
    from export import verify

    argv = [str(_need(paths.classifier, "evaluate")), "--onnx", str(_need(paths.onnx, "export")),
            "--lce", str(_need(paths.lce, "export")), "--images", args.verify_images,
            "--limit", str(args.verify_limit), "--report", str(paths.verify), "--plot", str(paths.verify_png)]
    rc = verify.main(argv + ([] if args.localise else ["--no-localise"]))
    if rc == 2:
        raise BurnEdgeError("verify could not run (see the error above)")
    return {"passed": rc == 0}


def phase_bench(args, paths: Paths) -> dict:
    from runtimes import latency_table
    from runtimes.bench import run_bench
    from runtimes.format import LCE_KERNELS
    from runtimes.hostinfo import host_info

    models = [_need(p, "export") for p in (paths.onnx, paths.lce, paths.float)]
    from runtimes.hostinfo import default_thread_counts

    threads = args.threads or default_thread_counts()
    print(f"bench: {', '.join(p.name for p in models)}; LCE kernels {', '.join(LCE_KERNELS)}; threads "
          f"{' '.join(map(str, threads))}; {args.bench_runs} timed runs each, interleaved", flush=True)
    rows = run_bench(models, threads=threads, runs=args.bench_runs, warmup=3, kernels=LCE_KERNELS,
                     progress=sys.stderr.isatty())
    print(latency_table.format_table(rows))
    latency_table.write_json(paths.bench, rows, [host_info()], {"runs": args.bench_runs, "threads": threads})
    latency_table.write_csv(paths.bench.with_suffix(".csv"), rows)
    print(f"wrote {paths.bench}, {paths.bench.with_suffix('.csv')}")
    return {"rows": len(rows)}


def phase_arm(args, paths: Paths) -> dict:
    """The ARM lane on the exported LCE model (runtimes.arm.arm_report), with the float twin's counts and
    whole-model estimate; arm.json holds the result or, per layer, why it was not run."""
    from common.files import atomic_write_json
    from runtimes.arm import arm_report, format_report, lane_passed

    lce = _need(paths.lce, "export")
    fm = paths.float if paths.float.is_file() else None
    print(f"arm: {lce.name}'s LceBconv2d layers on LCE's aarch64 kernels under qemu"
          + (f", float twin {fm.name}" if fm else ""), flush=True)
    report = arm_report(lce, source=args.lce_source, aarch64_python=args.aarch64_python, float_model=fm,
                        progress=lambda i, n, r: print(f"  [{i}/{n}] op {r.layer.op} {r.layer.describe()}: "
                                                       f"{'PASS' if r.ok else 'FAIL'}", flush=True))
    atomic_write_json(paths.arm, report)
    print(format_report(report))
    print(f"wrote {paths.arm}")
    return {"passed": lane_passed(report)}


def phase_report(args, paths: Paths, timings: dict | None = None) -> dict:
    from pipeline.markdown_report import write_report

    md = write_report(paths, timings or {})
    print(f"report: {md}")
    return {"report": str(md)}


PHASE_FNS = {"teacher": phase_teacher, "stage1": phase_stage1, "stage2": phase_stage2, "evaluate": phase_evaluate,
             "export": phase_export, "verify": phase_verify, "bench": phase_bench, "arm": phase_arm,
             "report": phase_report}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from train.config import PRESETS, RECIPES

    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits-tiny", choices=sorted(PRESETS),
                   help="training preset (default digits-tiny: the embedded, offline default)")
    p.add_argument("--data-root", default=None, help="data folder for presets that need one (never downloaded)")
    p.add_argument("--out", default="runs/pipeline", help="output folder (default runs/pipeline)")
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES),
                   help="run only these phases, in pipeline order (default: all)")
    p.add_argument("--teacher-checkpoint", default=None,
                   help="use this teacher (MoCo-v2 / torchvision / burn-edge) instead of pretraining one")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs for every training phase")
    p.add_argument("--recipe", default="official", choices=sorted(RECIPES),
                   help="BURN objective (default official: frozen random g, as the official code; paper: g trained "
                        "jointly); docs/training.md compares them")
    p.add_argument("--device", default="auto", help="training device: auto, cpu or cuda (default auto)")
    p.add_argument("--android-assets", default=None, metavar="DIR",
                   help="export phase: also write the models, labels and preprocessing metadata into the Android "
                        "demo's assets (e.g. android_demo/app/src/main/assets)")
    p.add_argument("--verify-images", default="digits", help="verify inputs: digits, samples, noise or a folder")
    p.add_argument("--verify-limit", type=int, default=64, help="images used by verify (default 64)")
    p.add_argument("--no-localise", dest="localise", action="store_false",
                   help="verify the whole model only (skip the per-block comparison)")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="bench thread counts (default: 1, 2, 4, 8 up to the usable CPUs minus one; rows with more "
                        "threads than usable CPUs or a wide p10-p90 are flagged unstable)")
    p.add_argument("--bench-runs", type=int, default=30, help="timed runs per bench configuration (default 30)")
    p.add_argument("--lce-source", default=None, metavar="DIR",
                   help="arm phase: folder with the LCE, ruy, gemmlowp, tflite-micro and LiteRT sources (default "
                        "$BURN_EDGE_LCE_SOURCE, else ../shared/third_party beside the repo)")
    p.add_argument("--aarch64-python", default=None, metavar="DIR",
                   help="arm phase: aarch64 Python folder for the float twin's counts (default "
                        "$BURN_EDGE_AARCH64_PYTHON, else ~/.cache/burn-edge/aarch64-python)")
    return p


def option_ranges() -> dict[str, Range]:
    """Allowed values of the numeric options (common.cli.Range: finite, in range)."""
    return {"epochs": Range(1, 1 << 30, integer=True), "verify_limit": Range(1, 1 << 20, integer=True),
            "threads": Range(1, thread_limit(), integer=True), "bench_runs": Range(1, 1_000_000, integer=True)}


def main(argv=None) -> int:
    args = parse_args(get_args_parser(), argv)  # one-line argparse errors (common.cli)
    try:
        check_options(args, option_ranges())  # before any phase starts
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no CUDA/TensorRT start-up lines in the phases' logs
    paths = Paths(args.out)
    paths.out.mkdir(parents=True, exist_ok=True)
    timings_file = paths.out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    todo = [ph for ph in PHASES if ph in args.phases]
    expected = expected_seconds(args, timings)
    source = f"the last run in {paths.out}" if timings else "digits-tiny on a 2-core CPU"
    known = [expected[ph] for ph in todo if expected[ph] is not None]
    if known:
        print(f"pipeline: {len(todo)} phase(s), expected about {_mmss(sum(known))} (min:s, from {source})"
              + ("" if len(known) == len(todo) else "; some phases have no estimate"), flush=True)
    gate_ok = True
    t_all, load_start = time.time(), load_1min()
    try:
        for i, ph in enumerate(todo, 1):
            left = [expected[p] for p in todo[i - 1:] if expected[p] is not None]
            eta = f" (expected {_mmss(expected[ph])}; about {_mmss(sum(left))} left in all)" \
                if expected[ph] is not None else ""
            print(f"\n=== [{i}/{len(todo)}] {ph}{eta} ===", flush=True)
            t0 = time.time()
            res = phase_report(args, paths, timings) if ph == "report" else PHASE_FNS[ph](args, paths)
            timings[ph] = round(time.time() - t0, 1)
            atomic_write_text(timings_file, json.dumps(timings, indent=1))
            if ph == "verify":
                gate_ok = res["passed"]
            elif ph == "arm" and res["passed"] is False:
                gate_ok = False
                print("ARM lane: a layer disagrees with the x86 interpreter on LCE's aarch64 kernels (see arm.json)",
                      file=sys.stderr)
            print(f"--- {ph} done in {timings[ph]:.0f}s", flush=True)
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = run_info(t_all, todo, load_start, time.time())
    atomic_write_text(paths.out / "run_info.json", json.dumps(info, indent=1))
    print(f"\npipeline finished in {info['seconds']:.0f}s (load average {info['load_start']} at the start, "
          f"{info['load_end']} at the end, {info['usable_cpus']} usable CPUs); outputs in {paths.out}")
    if not gate_ok:
        print("equivalence gate FAILED (see verify.json / arm.json)", file=sys.stderr)
    return 0 if gate_ok else 1


if __name__ == "__main__":
    sys.exit(main())
