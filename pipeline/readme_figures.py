"""Recompute the README figures that are cheap to reproduce, and fail when README.md says something else.

    python -m pipeline.readme_figures            # print the figures, compare with README.md (exit 1 on drift)
    python -m pipeline.readme_figures --no-export   # only the seconds-cheap checks (no LCE conversion)
    python -m pipeline.readme_figures --record-run runs/pipeline --write        # after a python -m pipeline run
    python -m pipeline.readme_figures --record-results runs/results --write     # after python -m pipeline.results
    python -m pipeline.readme_figures --record-arm runs/arm224/arm.json --write # after benchmarks/arm_reactnet224.py

Checked (each from the current code, nothing cached):

* ``lce_kb`` / ``float_mb``: the sizes of the LCE and float TFLite files ``python -m pipeline`` exports for the
  digits-tiny preset (the stage-2 BURN network with its folded linear head; file sizes do not depend on the
  weights, so a seeded random network of the same architecture gives the same bytes). About a minute of CPU.
* ``verify_stages``: the stages ``export.verify`` compares for that network (``ReActNetA.stages()``), which
  README's equivalence section lists.

* the generated blocks (``pipeline.measured_figures``): README's measured-run paragraph and its results table
  (and its 224² aarch64 tables) must equal their renderings from ``docs/pipeline-run.json``,
  ``docs/results-digits-tiny.json`` (and ``docs/arm-reactnet224.json``), and every
  ``mean ± std`` the results prose quotes must be a cell of that table. ``--record-run DIR`` /
  ``--record-results DIR`` update a record from a finished run folder; ``--write`` rewrites README's blocks.

The recorded numbers come from training and timing runs, which this command does not repeat: each record names
its date, commit and machine load.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from common.cli import parse_args
from common.errors import BurnEdgeError
from common.files import atomic_write_text
from pipeline import measured_figures as mf

README = Path(__file__).resolve().parents[1] / "README.md"


def pipeline_classifier():
    """The architecture of the pipeline's deployable classifier (digits-tiny, BURN stage 2, linear head), seeded
    random weights, eval mode."""
    import torch

    from train.config import resolve_config
    from train.data import dataset_info
    from train.methods.common import build_student

    cfg = resolve_config("digits-tiny", method="burn", stage=2)
    torch.manual_seed(0)
    model = build_student(cfg, num_classes=dataset_info(cfg.dataset).num_classes, head_hidden=0).eval()
    with torch.no_grad():  # no two constants alike (as after training): the converter stores equal buffers once
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if t.is_floating_point():
                t.add_(0.01 * torch.randn_like(t))
                if "running_var" in name:
                    t.abs_()
    return model


def compute(export: bool = True, out: Path | None = None) -> dict:
    """``{"verify_stages": [...], "lce_kb": "617", "float_mb": "7.45"}`` (sizes only with ``export``), as README
    writes them (kB = 1000 bytes, MB = 10^6 bytes). ``out``: also write the two files there (model.tflite,
    model_float.tflite), e.g. to time them with ``python -m runtimes.bench``."""
    model = pipeline_classifier()
    figures = {"verify_stages": [name for name, _ in model.stages("logits")]}
    if export:
        from common.tfenv import quiet_tensorflow

        quiet_tensorflow()
        from export.lce import build_keras, convert, convert_float

        lce, flt = convert(build_keras(model)), convert_float(build_keras(model, float_model=True))
        figures.update(lce_bytes=len(lce), float_bytes=len(flt), lce_kb=f"{len(lce) / 1e3:.0f}",
                       float_mb=f"{len(flt) / 1e6:.2f}")
        if out is not None:
            from common.files import atomic_write_bytes

            out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out / "model.tflite", lce)
            atomic_write_bytes(out / "model_float.tflite", flt)
    return figures


def readme_claims(text: str) -> dict:
    """The same figures as README.md states them (None where README states none)."""
    lce = re.search(r"(\d+) KB\** LCE model", text)
    flt = re.search(r"(\d+(?:\.\d+)?) MB\** float TFLite", text)
    stages = re.search(r"runs \*\*every stage\*\* \((.*?)\)\s+\*\*teacher-forced", text, flags=re.S)
    listed = re.findall(r"`([a-z]+(?:\.\d+)?)`", stages.group(1)) if stages else None
    return {"lce_kb": lce.group(1) if lce else None, "float_mb": flt.group(1) if flt else None,
            "verify_stages": listed}


def drift(figures: dict, claims: dict) -> list[str]:
    """One line per README figure that differs from the recomputed one."""
    bad = []
    for key in ("lce_kb", "float_mb"):
        if key in figures and claims.get(key) != figures[key]:
            bad.append(f"{key}: README says {claims.get(key)}, the current code gives {figures[key]}")
    stages, listed = figures["verify_stages"], claims.get("verify_stages")
    if listed is None:
        bad.append("verify_stages: README's 'runs **every stage** (...)' sentence is missing")
    else:  # README abbreviates blocks.0 ... blocks.12 by their ends
        blocks = [s for s in stages if s.startswith("blocks.")]
        expected = [s for s in stages if not s.startswith("blocks.")] + ([blocks[0], blocks[-1]] if blocks else [])
        missing = [s for s in expected if s not in listed]
        extra = [s for s in listed if s not in stages]
        if missing or extra:
            bad.append(f"verify_stages: README lists {listed}; the pipeline's network has {stages} "
                       f"(missing {missing}, not a stage {extra})")
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.readme_figures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-export", action="store_true", help="skip the model-size figures (no LCE conversion)")
    p.add_argument("--out", type=Path, default=None, help="also keep the exported .tflite files in this folder")
    p.add_argument("--readme", type=Path, default=README, help="README to check (default: the checkout's)")
    p.add_argument("--record-run", type=Path, metavar="DIR",
                   help=f"record a finished python -m pipeline folder into {mf.PIPELINE_DOC.relative_to(mf.ROOT)}")
    p.add_argument("--record-results", type=Path, metavar="DIR",
                   help=f"record python -m pipeline.results' folder into {mf.RESULTS_DOC.relative_to(mf.ROOT)}")
    p.add_argument("--record-arm", type=Path, metavar="ARM_JSON",
                   help=f"record an arm.json of benchmarks/arm_reactnet224.py into {mf.ARM_DOC.relative_to(mf.ROOT)}")
    p.add_argument("--write", action="store_true", help="rewrite README's generated blocks from the records")
    args = parse_args(p, argv)  # one-line argparse errors (common.cli)
    try:
        text = args.readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read --readme {args.readme}: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 2
    try:
        for src, dst, record in ((args.record_run, mf.PIPELINE_DOC, mf.record_pipeline_run),
                                 (args.record_results, mf.RESULTS_DOC, mf.record_results),
                                 (args.record_arm, mf.ARM_DOC, mf.record_arm)):
            if src is not None:
                atomic_write_text(dst, json.dumps(record(src), indent=1) + "\n")
                print(f"recorded {src} -> {dst}")
        rendered = mf.renderings()
        if args.write:
            text = mf.write_blocks(text, rendered)
            atomic_write_text(args.readme, text)
        figures = compute(export=not args.no_export, out=args.out)
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for k, v in figures.items():
        print(f"{k}: {v}")
    bad = drift(figures, readme_claims(text)) + mf.block_drift(text, rendered) \
        + mf.prose_drift(text, rendered["results-table"])
    for line in bad:
        print(f"DRIFT {line}")
    print("README figures match" if not bad else f"{len(bad)} README figure(s) out of date")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
