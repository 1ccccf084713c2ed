"""Export a burn-edge checkpoint (or an official ReActNet-A state dict) to a Larq Compute Engine model.

    python -m export.to_lce ckpt.pt [-o model.tflite] [--model-output logits|features] [--float]
                                    [--allow-float-fallback] [--input-size N]

The .tflite takes (1, S, S, 3) float32 **NHWC** images, normalised with the mean/std in
``<model>.meta.json`` (keys ``burn_edge.*``, as the ONNX metadata); batch size is fixed to 1. PyTorch's
padding geometry is reproduced exactly (the model flips H/W internally; see ``export.lce``). Every binary
conv must become an ``LceBconv2d``: the converter audit (also ``python -m export.audit``) checks that and
writes ``<model>.audit.json``. ``--float`` builds the same network as a plain float TFLite model (every conv
a ``CONV_2D``): the benchmark baseline, and the only option for stage-1 (float-weight) checkpoints.
Stages: load -> build (tf_keras + larq) -> convert -> audit -> save.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

from common.cli import parse_args
from common.errors import BurnEdgeError
from common.files import ArtefactSet
from common.tfenv import native_stderr_silenced, quiet_tensorflow
from export.common import OUTPUTS, make_metadata
from export.errors import ExportError, FloatFallbackError
from export.loading import add_arch_args, load_stage, prepare_outputs
from export.stages import Checklist
from runtimes.format import AUDIT_MODEL_SHA256, AUDIT_SUFFIX, META_MODEL_SHA256, sidecar_path


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.to_lce", description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="burn-edge checkpoint (.pt) or official ReActNet-A state dict")
    p.add_argument("-o", "--out", default=None,
                   help="output .tflite path (default: <checkpoint>.tflite, or <checkpoint>-float.tflite "
                        "with --float)")
    p.add_argument("--model-output", dest="output", choices=OUTPUTS, default="logits",
                   help="model output: logits (1, classes) or pooled features (1, C) (default logits)")
    p.add_argument("--float", dest="float_model", action="store_true",
                   help="plain float TFLite model of the same network (tf.lite converter, no LCE ops)")
    p.add_argument("--allow-float-fallback", action="store_true",
                   help="keep going (exit 0) when the audit finds a binary conv that is not an LceBconv2d")
    add_arch_args(p)
    return p


def write_model_set(out: Path, data: bytes, meta: dict, audit: dict) -> None:
    """Write ``out`` + ``.meta.json`` + ``.audit.json`` as one artefact set (:class:`common.files.ArtefactSet`):
    all three are written to temp names first (a full disk leaves the old set untouched), then renamed,
    sidecars first and the model last; both sidecars carry the model's sha256 (``burn_edge.model_sha256`` /
    ``model_sha256``), so a reader (:func:`runtimes.format.read_sidecar`) refuses a model whose sidecars belong
    to another export. See docs/export.md, "Artefact sets"."""
    sha = hashlib.sha256(data).hexdigest()
    with ArtefactSet() as s:
        s.write_text(sidecar_path(out), json.dumps({**meta, META_MODEL_SHA256: sha}, indent=2) + "\n")
        s.write_json(sidecar_path(out, AUDIT_SUFFIX), {**audit, AUDIT_MODEL_SHA256: sha})
        s.write_bytes(out, data)


def export_lce(lm, out: Path, *, output: str = "logits", float_model: bool = False,
               allow_float_fallback: bool = False, checklist: Checklist | None = None):
    """Build, convert, audit and write ``out`` (+ ``.meta.json`` + ``.audit.json``). Returns the AuditReport."""
    cl = checklist or Checklist(stream=io.StringIO())
    if lm.stage == 1 and not float_model:
        raise ExportError(f"{lm.source} is a stage-1 checkpoint (float weights): LCE needs binary weights; "
                          "pass --float for a float TFLite model, or export a stage-2 checkpoint")
    quiet_tensorflow()
    from export.audit import audit_flatbuffer
    from export.lce import build_keras, convert, convert_float

    with cl.stage("build", f"tf_keras + larq, output {output}"):
        km = build_keras(lm.model, output=output, float_model=float_model)
        cl.note(f"{len(km.layers)} Keras layers")
    with cl.stage("convert", "tf.lite float converter" if float_model else "larq_compute_engine"):
        with native_stderr_silenced():  # the converter's absl log lines (no variable silences them)
            data = convert_float(km) if float_model else convert(km)
        cl.note(f"{len(data):,} bytes")
    kind = "tflite-float" if float_model else "lce"
    with cl.stage("audit"):
        report = audit_flatbuffer(data, lm.model, kind=kind)
        cl.note(report.render().replace("\n", "\n  "))
    with cl.stage("save", str(out)):  # one artefact set: the old set or the new one, never a mix
        meta = make_metadata(lm.model, output=output, layout="NHWC", kind=kind, mean=lm.mean, std=lm.std,
                             source_sha256=lm.sha256)
        write_model_set(out, data, meta, report.to_dict())
    if not report.ok and not allow_float_fallback:
        raise FloatFallbackError(
            f"{len(report.float_fallbacks)} binary conv(s) did not become LceBconv2d "
            f"({', '.join(report.float_fallbacks[:3])}); {out} was written for inspection, "
            "pass --allow-float-fallback to accept it")
    return report


def main(argv=None) -> int:
    args = parse_args(get_args_parser(), argv)  # robust: one-line argparse errors (common.cli)
    cl = Checklist()
    try:
        suffix = "-float.tflite" if args.float_model else ".tflite"
        out = Path(args.out) if args.out else Path(args.checkpoint).with_name(Path(args.checkpoint).stem + suffix)
        prepare_outputs(args.checkpoint, out, sidecar_path(out), sidecar_path(out, AUDIT_SUFFIX))
        lm = load_stage(cl, args)
        export_lce(lm, out, output=args.output, float_model=args.float_model,
                   allow_float_fallback=args.allow_float_fallback, checklist=cl)
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
