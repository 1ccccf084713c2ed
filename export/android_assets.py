"""Write the Android demo app's assets: model(s), labels, sample images and a metadata JSON.

The app (``android_demo/``) never hard-codes preprocessing; it reads ``metadata.json`` written here::

    python -m export.android_assets --lce out/model.tflite --float out/model_float.tflite \\
        --checkpoint runs/digits/final.pt -o android_demo/app/src/main/assets

Files written into the assets folder (any earlier ``model_*.tflite`` / ``samples/*.png`` are replaced):

* ``model_lce.tflite`` / ``model_float.tflite`` -- copies of the given models (the binary LCE model and its
  float twin from ``python -m export.to_lce --float``); each is NHWC float32, batch 1, logits out, with any H/W
  flip of the LCE port inside the model, so the app feeds upright images;
* ``labels.txt`` -- one class name per line;
* ``samples/NN_<label>.png`` -- a few images of the model's input size for the app's gallery (digits only);
* ``metadata.json`` -- schema version 1 (read by ``org.burnedge.demo.logic.ModelMetadata``)::

    {"format": "burn-edge/android-assets", "version": 1,
     "input": {"layout": "NHWC", "dtype": "float32", "batch": 1, "height": S, "width": S, "channels": 3,
               "color": "RGB", "scale": 1/255, "mean": [3 floats], "std": [3 floats],
               "formula": "x[h][w][c] = (u8[h][w][c] * scale - mean[c]) / std[c] in float32"},
     "output": {"kind": "logits", "num_classes": K},
     "class_names": [K strings], "labels_file": "labels.txt",
     "models": {"lce": {"file", "bytes", "sha256", "source"} | null, "float": {...} | null},
     "samples": [{"file": "samples/00_0.png", "label": "0"}, ...],
     "arch": {ReActNetConfig as a dict}, "source_checkpoint": {"file", "sha256"}, "created_utc": "..."}

Mean/std: ``--mean/--std``, else the exporter's sidecar (``m.meta.json``), else the data set the checkpoint
records (or ``--dataset``; default digits); explicit values that disagree with the sidecar are an error.
The formula is ``train.data.eval_transform`` (torchvision ``ToDtype(float32, scale=True)`` then ``Normalize``)
without resizing; ``tests/android`` checks that the Java preprocessing equals it to 1e-6.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.errors import BurnEdgeError
from common.files import atomic_copy, atomic_write_text, sha256_file
from export.errors import ExportError
from train.data import DATASETS

FORMAT = "burn-edge/android-assets"
VERSION = 1
METADATA_FILE = "metadata.json"
LABELS_FILE = "labels.txt"
SAMPLES_DIR = "samples"
MODEL_FILES = {"lce": "model_lce.tflite", "float": "model_float.tflite"}
SCALE = 1.0 / 255.0
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8 of every .tflite file


class AndroidAssetsError(ExportError):
    """The assets cannot be written: a missing/corrupt model, labels that do not fit the model, bad mean/std."""


def _check_tflite(path: Path, role: str) -> None:
    if not path.is_file():
        raise AndroidAssetsError(f"{role} model not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        raise AndroidAssetsError(f"{role} model {path} is not a TFLite flatbuffer (no 'TFL3' identifier); pass the "
                                 ".tflite written by python -m export.to_lce")


def read_sidecar(path: str | os.PathLike) -> dict:
    """The exporter's ``burn_edge.*`` metadata of a .tflite model, JSON values decoded; {} if there is none.

    The sidecar of ``m.tflite`` is ``m.meta.json`` (export.audit) or ``m.tflite.meta.json`` (runtimes); both are read.
    """
    path = Path(path)
    sides = [p for p in (path.with_suffix(".meta.json"), path.with_name(path.name + ".meta.json")) if p.is_file()]
    if not sides:
        return {}
    try:
        meta = json.loads(sides[0].read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AndroidAssetsError(f"{sides[0]} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise AndroidAssetsError(f"{sides[0]} must hold a JSON object")
    out = {}
    for k, v in meta.items():
        if isinstance(v, str) and v[:1] in "[{0123456789":
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v
    return out


def _check_sidecar(path: Path, role: str, size: tuple[int, int], mean: list[float], std: list[float]) -> None:
    """If the exporter's metadata sidecar exists, it must agree with what the app will feed."""
    meta = read_sidecar(path)
    if not meta:
        return
    val = meta.get

    layout = val("burn_edge.layout")
    if layout not in (None, "NHWC"):
        raise AndroidAssetsError(f"{role} model {path} has layout {layout}; the app feeds NHWC")
    output = val("burn_edge.output")
    if output not in (None, "logits"):
        raise AndroidAssetsError(f"{role} model {path} outputs {output!r}; the app needs a logits model "
                                 "(export with --output logits)")
    for key, want in (("burn_edge.mean", mean), ("burn_edge.std", std)):
        got = val(key)
        if got is not None and (len(got) != 3 or any(abs(float(a) - b) > 1e-6 for a, b in zip(got, want))):
            raise AndroidAssetsError(f"{role} model {path} was exported with {key.split('.')[1]}={got}, but the "
                                     f"assets would use {want}; pass matching --mean/--std")
    got = val("burn_edge.input_size")
    if got is not None:
        hw = (int(got), int(got)) if isinstance(got, (int, float)) else tuple(int(v) for v in got[-2:])
        if hw != tuple(size):
            raise AndroidAssetsError(f"{role} model {path} takes {hw[0]}x{hw[1]} images, the checkpoint "
                                     f"{size[0]}x{size[1]}")


def _safe_label(label: str) -> str:
    """An ASCII file-name fragment for a label (APK asset names are safest in ASCII)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in label)[:40] or "x"


def write_android_assets(assets_dir: str | os.PathLike, *, lce_model: str | os.PathLike | None = None,
                         float_model: str | os.PathLike | None = None, arch: dict, input_size: int | Sequence[int],
                         mean: Sequence[float], std: Sequence[float], class_names: Sequence[str],
                         source_checkpoint: str | os.PathLike | None,
                         samples: Sequence[tuple[np.ndarray, str]] = ()) -> Path:
    """Write models, labels, samples and ``metadata.json`` into ``assets_dir``; return the metadata path.

    input_size: S or (H, W); mean/std: 3 floats on the [0, 1] pixel scale (RGB); class_names: one per model
    output; arch: the checkpoint's ``"arch"`` dict (stored for reference; its ``num_classes`` and
    ``input_size`` must agree with the other arguments); source_checkpoint: path of the checkpoint the
    models came from (hashed if it exists). samples: (image uint8 (H, W, 3), label) pairs, saved as PNG.
    """
    models = {"lce": lce_model, "float": float_model}
    if all(v is None for v in models.values()):
        raise AndroidAssetsError("no model given: pass an LCE model, a float model, or both")
    hw = (int(input_size), int(input_size)) if np.isscalar(input_size) else tuple(int(v) for v in input_size)
    if len(hw) != 2 or min(hw) < 1:
        raise AndroidAssetsError(f"input_size must be S or (H, W) with positive sizes, got {input_size!r}")
    mean = [float(v) for v in mean]
    std = [float(v) for v in std]
    if len(mean) != 3 or len(std) != 3:
        raise AndroidAssetsError(f"mean and std need 3 values (RGB), got mean={mean} std={std}")
    if not all(math.isfinite(v) for v in mean) or not all(math.isfinite(v) and v > 0 for v in std):
        raise AndroidAssetsError(f"mean must be finite and std > 0, got mean={mean} std={std}")
    names = [str(c) for c in class_names]
    if not names or any(not c.strip() or "\n" in c or "\r" in c for c in names):
        raise AndroidAssetsError("class names must be non-empty single-line strings")
    k = arch.get("num_classes")
    if k is not None and int(k) != len(names):
        raise AndroidAssetsError(f"the model has {k} outputs but {len(names)} class names were given "
                                 f"(a BURN pre-training checkpoint outputs features, not classes: export the "
                                 f"linear-evaluated or fine-tuned checkpoint)")
    s = arch.get("input_size")
    if s is not None and (int(s), int(s)) != hw:
        raise AndroidAssetsError(f"the checkpoint's input_size is {s} but the assets would use {hw[0]}x{hw[1]}")
    for role, p in models.items():
        if p is not None:
            _check_tflite(Path(p), role)
            _check_sidecar(Path(p), role, hw, mean, std)

    out = Path(assets_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_meta: dict[str, dict | None] = {}
    for role, p in models.items():
        dst = out / MODEL_FILES[role]
        if p is None:
            dst.unlink(missing_ok=True)  # never leave a stale model the metadata does not describe
            model_meta[role] = None
            continue
        atomic_copy(Path(p), dst)
        model_meta[role] = {"file": MODEL_FILES[role], "bytes": dst.stat().st_size, "sha256": sha256_file(dst),
                            "source": Path(p).name}
    atomic_write_text(out / LABELS_FILE, "".join(c + "\n" for c in names))

    sample_dir = out / SAMPLES_DIR
    if sample_dir.is_dir():
        for old in sample_dir.glob("*.png"):
            old.unlink()
    sample_meta = []
    if samples:
        from PIL import Image

        sample_dir.mkdir(exist_ok=True)
        for i, (img, label) in enumerate(samples):
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.shape != (hw[0], hw[1], 3):
                raise AndroidAssetsError(f"sample {i} must be uint8 {hw[0]}x{hw[1]}x3, got {img.dtype} {img.shape}")
            name = f"{SAMPLES_DIR}/{i:02d}_{_safe_label(str(label))}.png"
            Image.fromarray(img, "RGB").save(out / name)
            sample_meta.append({"file": name, "label": str(label)})

    src = None
    if source_checkpoint is not None:
        sp = Path(source_checkpoint)
        src = {"file": sp.name, "sha256": sha256_file(sp) if sp.is_file() else None}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "input": {"layout": "NHWC", "dtype": "float32", "batch": 1, "height": hw[0], "width": hw[1],
                  "channels": 3, "color": "RGB", "scale": SCALE, "mean": mean, "std": std,
                  "formula": "x[h][w][c] = (u8[h][w][c] * scale - mean[c]) / std[c] in float32"},
        "output": {"kind": "logits", "num_classes": len(names)},
        "class_names": names,
        "labels_file": LABELS_FILE,
        "models": model_meta,
        "samples": sample_meta,
        "arch": dict(arch),
        "source_checkpoint": src,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = out / METADATA_FILE
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
    return path


def digits_samples(size: int, per_class: int = 1, limit: int = 10) -> list[tuple[np.ndarray, str]]:
    """Test-split digits as (uint8 (S, S, 3), label): the first image of each class in class order, then the
    second of each, ... (``per_class`` rounds), at most ``limit`` images."""
    from train.data import DigitsDataset

    ds = DigitsDataset("test", size=size)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(ds.targets):
        by_class.setdefault(t, []).append(i)
    order = [by_class[c][r] for r in range(per_class) for c in sorted(by_class) if r < len(by_class[c])]
    return [(ds.images[i].permute(1, 2, 0).numpy().copy(), DigitsDataset.classes[ds.targets[i]])  # (S, S, 3)
            for i in order[:limit]]


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
    p.add_argument("-o", "--output", required=True, metavar="DIR",
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
    args = get_args_parser().parse_args(argv)
    try:
        from train.checkpoint import read_checkpoint
        from train.data import DigitsDataset, dataset_info
        from train.models.reactnet import ReActNetConfig

        if args.lce is None and args.float_model is None:
            raise AndroidAssetsError("pass --lce MODEL.tflite, --float MODEL.tflite or both")
        if args.samples < 0:
            raise AndroidAssetsError(f"--samples must be >= 0, got {args.samples}")
        ckpt = read_checkpoint(args.checkpoint)
        if not isinstance(ckpt.get("arch"), dict):
            raise AndroidAssetsError(f"{args.checkpoint} has no 'arch' entry; pass a burn-edge ReActNet checkpoint")
        arch = ReActNetConfig.from_dict(ckpt["arch"]).to_dict()
        dataset = args.dataset or recorded_dataset(ckpt) or "digits"  # digits: the embedded default data set
        mean, std = args.mean, args.std
        for m in (args.lce, args.float_model):
            side = read_sidecar(m) if m is not None else {}
            mean = mean or side.get("burn_edge.mean")
            std = std or side.get("burn_edge.std")
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
        path = write_android_assets(args.output, lce_model=args.lce, float_model=args.float_model, arch=arch,
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
