"""``python -m export.android_assets``: write the Android demo app's assets (models, labels, samples, metadata).

The app (``android_demo/``) never hard-codes preprocessing; it reads ``metadata.json`` written here::

    python -m export.android_assets --lce out/model.tflite --float out/model_float.tflite \\
        --checkpoint runs/digits/final.pt -o android_demo/app/src/main/assets

Files (schema: :mod:`export.android.contract`; writer: :mod:`export.android.writer`):

* ``model_lce.tflite`` / ``model_float.tflite`` -- copies of the given models (the binary LCE model and its
  float twin from ``python -m export.to_lce --float``); each is NHWC float32, batch 1, logits out, with any H/W
  flip of the LCE port inside the model, so the app feeds upright images;
* ``labels.txt`` -- one class name per line;
* ``samples/NN_<label>.png`` -- a few images of the model's input size for the app's gallery (digits only);
* ``metadata.json`` -- input size, normalisation, class names, model hashes.

Mean/std: ``--mean/--std``, else the exporter's sidecar (``m.meta.json``), else the data set the checkpoint
records (or ``--dataset``; default digits); explicit values that disagree with the sidecar are an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.cli import Range, check_options, parse_args
from common.errors import BurnEdgeError
from export.android.checks import model_metadata
from export.android.samples import digits_samples
from export.android.writer import write_android_assets
from export.errors import AndroidAssetsError
from runtimes.format import META_MEAN, META_STD
from train.data_info import DATASETS


def recorded_dataset(ckpt: dict, depth: int = 0) -> str | None:
    """A known data set name stored under a ``"dataset"`` key anywhere in the checkpoint's (nested) dicts."""
    v = ckpt.get("dataset")
    if isinstance(v, str) and v in DATASETS:
        return v
    if depth < 3:
        for sub in ckpt.values():
            if isinstance(sub, dict):
                found = recorded_dataset(sub, depth + 1)
                if found:
                    return found
    return None


# ----------------------------------------------------------------------------------------------- CLI

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m export.android_assets", add_help=add_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write the Android demo app's assets (models, labels.txt, samples/, metadata.json).",
        epilog="example:\n  python -m export.android_assets --lce out/model.tflite --float out/model_float.tflite \\\n"
               "      --checkpoint runs/digits/final.pt -o android_demo/app/src/main/assets")
    p.add_argument("--lce", metavar="MODEL.tflite", help="binary LCE model (python -m export.to_lce)")
    p.add_argument("--float", dest="float_model", metavar="MODEL.tflite",
                   help="float twin of the same network (export.to_lce --float); at least one of --lce/--float")
    p.add_argument("--checkpoint", required=True, metavar="CKPT.pt",
                   help="the burn-edge checkpoint the models were exported from; its 'arch' gives the input size "
                        "and the number of classes")
    p.add_argument("-o", "--out", required=True, metavar="DIR",
                   help="assets folder to write, normally android_demo/app/src/main/assets")
    p.add_argument("--dataset", default=None, choices=sorted(DATASETS),
                   help="data set the model was trained on (default: the one the checkpoint records, else "
                        "digits); gives "
                        "mean/std when the models have no exporter metadata, and for digits the class names and "
                        "sample images (other data sets need --labels)")
    p.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="normalisation mean on [0, 1] pixels (default: the exporter's <model>.meta.json, else the "
                        "data set's); must agree with the exporter's metadata if that exists")
    p.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="normalisation std on [0, 1] pixels (default: as --mean)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line, in output order "
                                                    "(default: the data set's classes; required for non-digits)")
    p.add_argument("--samples", type=int, default=10, metavar="N",
                   help="bundle N sample images from the digits test split (one per class, in class order; default 10; "
                        "0 = none; only with the digits class names, i.e. without --labels)")
    return p


def main(argv=None) -> int:
    args = parse_args(get_args_parser(), argv)  # robust: one-line argparse errors (common.cli)
    try:
        check_options(args, {"mean": Range(), "std": Range(0, lo_open=True), "samples": Range(0, 10_000)})
        from train.checkpoint import read_checkpoint, stored_arch
        from train.data import DigitsDataset, dataset_info

        if args.lce is None and args.float_model is None:
            raise AndroidAssetsError("pass --lce MODEL.tflite, --float MODEL.tflite or both")
        if args.samples < 0:
            raise AndroidAssetsError(f"--samples must be >= 0, got {args.samples}")
        ckpt = read_checkpoint(args.checkpoint)
        if not isinstance(ckpt.get("arch"), dict):
            raise AndroidAssetsError(f"{args.checkpoint} has no 'arch' entry; pass a burn-edge ReActNet checkpoint")
        arch = stored_arch(ckpt).to_dict()
        dataset = args.dataset or recorded_dataset(ckpt) or "digits"  # digits: the embedded default data set
        mean, std = args.mean, args.std
        for m in (args.lce, args.float_model):
            side = model_metadata(m) if m is not None else {}
            mean = mean or side.get(META_MEAN)
            std = std or side.get(META_STD)
        if mean is None or std is None:
            info = dataset_info(dataset)
            mean, std = mean or info.mean, std or info.std
        if args.labels is not None:
            try:
                names = [ln.rstrip("\r") for ln in Path(args.labels).read_text(encoding="utf-8").splitlines()]
            except OSError as e:
                raise AndroidAssetsError(f"cannot read --labels {args.labels}: {e.strerror}") from None
        elif dataset == "digits":
            names = list(DigitsDataset.classes)
        else:
            raise AndroidAssetsError(f"data set {dataset} has no built-in class names; pass --labels FILE "
                                     "(one name per line, in output order)")
        size = int(arch["input_size"])
        from_digits = args.labels is None and dataset == "digits"  # sample labels must be class names
        samples = digits_samples(size, limit=args.samples) if from_digits and args.samples else ()
        path = write_android_assets(args.out, lce_model=args.lce, float_model=args.float_model, arch=arch,
                                    input_size=size, mean=mean, std=std, class_names=names,
                                    source_checkpoint=args.checkpoint, samples=samples)
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = json.loads(path.read_text())
    models = ", ".join(f"{k}: {v['file']}" for k, v in meta["models"].items() if v)
    print(f"wrote {path.parent}: {models}; {len(meta['class_names'])} labels; {len(meta['samples'])} samples; "
          f"{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
