"""``python -m export.verify``: the command line (see ``python -m export.verify --help``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from common.cli import parse_args
from common.errors import BurnEdgeError, ConfigError
from common.files import atomic_save, atomic_write_json, refuse_same_path
from export.errors import ExportError
from export.loading import add_arch_args, arch_from_args, load_model, prepare_outputs
from export.verify.report import RUNTIMES, Tolerances


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.verify", add_help=add_help,
                                description=importlib.import_module("export.verify").__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="burn-edge checkpoint (.pt) of a stage-2 (binary-weight) ReActNet")
    p.add_argument("--onnx", help="the .onnx file you ship: its own stages are judged (default: a fresh export of "
                                  "the checkpoint is judged instead)")
    p.add_argument("--lce", help="the LCE .tflite file you ship: its own stages are judged, on every LCE kernel "
                                 "in --runtimes (default: a fresh export)")
    p.add_argument("--images", default="digits",
                   help="inputs: digits (embedded test split), samples (scikit-image photos), noise, or a folder")
    p.add_argument("--limit", type=int, default=64, help="use at most this many images, >= 1 (default 64)")
    p.add_argument("--model-output", dest="output", choices=("logits", "features"), default="logits",
                   help="which model output to compare (default logits)")
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES,
                   help="runtimes to check (default: all)")
    p.add_argument("--no-localise", action="store_true",
                   help="skip the teacher-forced stage comparison (then only --min-top1/--min-cosine/--logit-rtol "
                        "and non-finite outputs can fail the gate)")
    add_arch_args(p)  # --input-size, --dataset (input mean/std) and the official state dict's architecture
    p.add_argument("--accept-statistical", action="store_true",
                   help="let a given file that has no stage marks and differs from a fresh export (another tool's "
                        "file) pass on the weaker 'statistically consistent only' guarantee (default: it fails)")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--plot", help="write a PNG of the teacher-forced relative error by stage here")
    t = Tolerances()
    p.add_argument("--block-rtol", type=float, default=t.block_rtol,
                   help=f"the smallest stage tolerance: a stage matches when max|diff|/max|ref| (after replaying bit "
                        f"flips) <= max(this, --rounding-factor x PyTorch float32's own error) "
                        f"(default {t.block_rtol})")
    p.add_argument("--rounding-factor", type=float, default=t.rounding_factor,
                   help=f"a stage may differ by this many times PyTorch float32's own error on it (measured "
                        f"against float64, same bits), never less than --block-rtol (default {t.rounding_factor:g})")
    p.add_argument("--max-flip-rate", type=float, default=t.max_flip_rate,
                   help=f"near-zero bit flips allowed per stage, fraction of its bits (default {t.max_flip_rate})")
    p.add_argument("--min-top1", type=float, default=None, help="also require this end-to-end top-1 agreement")
    p.add_argument("--min-cosine", type=float, default=None, help="also require this end-to-end centred cosine")
    p.add_argument("--logit-rtol", type=float, default=None,
                   help="also require max|diff|/max|ref| <= this end to end (deep binary nets rarely meet any "
                        "tight bound: see docs/export.md)")
    return p


def main(argv=None) -> int:
    args = parse_args(get_args_parser(), argv)  # one-line argparse errors (common.cli)
    try:
        if args.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {args.limit}")
        tol = Tolerances(block_rtol=args.block_rtol, rounding_factor=args.rounding_factor,
                         max_flip_rate=args.max_flip_rate, min_top1=args.min_top1, min_cosine=args.min_cosine,
                         logit_rtol=args.logit_rtol)
        tol.validate()  # before the checkpoint and images are loaded (verify() checks again for API callers)
        outs = [o for o in (args.report, args.plot) if o]
        for out in outs:
            refuse_same_path(out, args.checkpoint, args.onnx, args.lce, what="--report/--plot")
        prepare_outputs(args.checkpoint, *outs)  # writable folders (with room) before the long work
        for flag, path in (("--onnx", args.onnx), ("--lce", args.lce)):
            if path and not Path(path).is_file():
                raise ExportError(f"{flag} {path}: no such file")
        from export.samples import load_inputs

        loaded = load_model(args.checkpoint, arch=arch_from_args(args), input_size=args.input_size,
                            dataset=args.dataset)
        model = loaded.model
        if not model.cfg.binary_weights and any(r.startswith("lce") for r in args.runtimes):
            raise ExportError("this is a stage-1 checkpoint (float weights): LCE needs binary weights; verify "
                              "a stage-2 checkpoint, or only ONNX with --runtimes onnxruntime")
        x, _ = load_inputs(args.images, model.cfg.input_size, loaded.mean, loaded.std, limit=args.limit)
        from tqdm import tqdm

        from export.verify.gate import verify

        steps = (1 if args.no_localise else 2) + (1 if args.onnx or args.lce else 0)
        bar = tqdm(total=steps, desc="verify", disable=None)

        def step(msg):
            bar.set_postfix_str(msg)
            bar.update(1)
            if not sys.stderr.isatty():  # a log gets plain progress lines (on stdout: stderr is for the error)
                print(f"verify: {msg}", flush=True)

        rep = verify(model, x, runtimes=tuple(args.runtimes), output=args.output, tol=tol,
                     localise=not args.no_localise, images=args.images, onnx_path=args.onnx, lce_path=args.lce,
                     official=loaded.official, source_sha256=loaded.sha256,
                     accept_statistical=args.accept_statistical, progress=step)
        bar.close()
        from export.verify.rendering import plot_blocks, render

        print(render(rep))
        if args.report:
            atomic_write_json(args.report, rep.to_dict())
            print(f"wrote {args.report}")
        if args.plot and rep.stages:
            atomic_save(args.plot, lambda tmp: plot_blocks(rep, tmp))
            print(f"wrote {args.plot}")
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if rep.passed else 1
