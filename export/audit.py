"""Converter audit: parse a .tflite flatbuffer and check every binary conv became ``LceBconv2d``.

    python -m export.audit model.tflite [--allow-float-fallback] [--json out.json]

Reports op counts (custom ops by their custom code, e.g. ``LceBconv2d``), maps each PyTorch
``BinaryConv2d`` (module path, in module order) to the conv op that implements it (op index, padding,
pad_values, fused activation, bit-packed weight bytes, output type) and lists float fallbacks: a binary
conv implemented by a float ``CONV_2D``. The PyTorch architecture is read from the ``<model>.meta.json``
sidecar written by ``export.to_lce`` (without it only counts are reported and every ``CONV_2D`` after the
first -- the stem -- counts as a fallback). A full ReActNet-A gives 31 ``LceBconv2d`` and 1 ``CONV_2D``.
Writes ``<model>.audit.json`` next to the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.cli import parse_args
from common.errors import BurnEdgeError, ModelFileError
from common.files import atomic_write_json, ensure_writable_dir, refuse_same_path
from export.errors import ExportError, FloatFallbackError
from runtimes.format import AUDIT_MODEL_SHA256, AUDIT_SUFFIX, META_ARCH, META_KIND, read_sidecar, sidecar_path
from runtimes.tflite_flatbuffer import ACTIVATION, FLOAT_CONV, LCE_BCONV, PADDING, OpInfo, read_ops

if TYPE_CHECKING:  # torch is imported where a model is needed, so --help answers at once
    from train.models.layers import BinaryConv2d
    from train.models.reactnet import ReActNetA


@dataclass
class ConvRow:
    """A PyTorch BinaryConv2d and the op that implements it (``op`` None: not found)."""

    module: str
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    op: str | None = None
    op_index: int | None = None
    padding: str | None = None
    pad_values: float | None = None
    fused_activation: str | None = None
    output_type: str | None = None
    weight_bytes: int | None = None


@dataclass
class AuditReport:
    """Result of :func:`audit_flatbuffer`; ``ok`` is False when a binary conv is not an ``LceBconv2d``."""

    kind: str
    size_bytes: int
    op_counts: dict[str, int]
    convs: list[ConvRow]
    float_fallbacks: list[str]
    n_lce_bconv: int
    n_float_conv: int
    expected_bconv: int | None
    ok: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        lines = [f"model kind {self.kind}, {self.size_bytes:,} bytes",
                 "ops: " + ", ".join(f"{k} {v}" for k, v in sorted(self.op_counts.items(), key=lambda kv: -kv[1]))]
        if self.convs:
            lines.append(f"{'module':<24} {'op':<11} {'k':>2} {'s':>2} {'padding':<8} {'pad':>4} "
                         f"{'fused':<6} {'out':<8} {'weight B':>9}")
            for r in self.convs:
                pv = "-" if r.pad_values is None else f"{r.pad_values:g}"
                lines.append(f"{r.module:<24} {r.op or 'MISSING':<11} {r.kernel:>2} {r.stride:>2} "
                             f"{r.padding or '-':<8} {pv:>4} {r.fused_activation or '-':<6} "
                             f"{r.output_type or '-':<8} {r.weight_bytes or 0:>9,}")
        exp = f" (expected {self.expected_bconv})" if self.expected_bconv is not None and self.kind == "lce" else ""
        lines.append(f"LceBconv2d {self.n_lce_bconv}{exp}, float CONV_2D {self.n_float_conv}, "
                     f"float fallbacks {len(self.float_fallbacks)}" +
                     (f": {', '.join(self.float_fallbacks)}" if self.float_fallbacks else ""))
        return "\n".join(lines)


def expected_bconvs(model: ReActNetA, upto: str | None = None) -> list[tuple[str, BinaryConv2d]]:
    """``(module path, module)`` of every BinaryConv2d in module order, up to stage ``upto`` (inclusive)."""
    from train.models.layers import BinaryConv2d

    rows = [(p, m) for p, m in model.named_modules() if isinstance(m, BinaryConv2d)]
    if upto is None:
        return rows
    if upto == "stem":
        return []
    last = int(upto.split(".")[1])
    return [(p, m) for p, m in rows if int(p.split(".")[1]) <= last]


def _conv_signature(op: OpInfo) -> tuple[int, int, int, int] | None:
    """(out_channels, kernel, stride, in_channels) of a conv op (LceBconv2d filters are OHWI bit-packed)."""
    if len(op.input_shapes) < 2 or len(op.input_shapes[1]) != 4:
        return None
    o, kh, _, packed = op.input_shapes[1]
    stride = _int_option(op, "stride_height", 1)
    cin = _int_option(op, "channels_in", None) if op.name == LCE_BCONV else packed
    if stride is None or cin is None:
        return None  # a conv whose options do not say its geometry matches no PyTorch conv
    return o, kh, stride, cin


def _int_option(op: OpInfo, key: str, default: int | None) -> int | None:
    """An integer op option (custom options come from the file: absent, null, text or huge values are
    possible); ``default`` when absent, None when present but not a finite integer."""
    v = op.options.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) or abs(v) > 2**31:
        return None if v is not default else default
    return int(v)


def audit_flatbuffer(flatbuffer: bytes, model: ReActNetA | None = None, *, kind: str = "lce",
                     upto: str | None = None, what: str = "model") -> AuditReport:
    """Audit a flatbuffer. ``model`` (any weights; a meta-device model is fine) gives the expected binary convs.

    kind: "lce" (binary convs must be LceBconv2d) or "tflite-float" (float baseline: CONV_2D expected).
    what: names the flatbuffer in errors (ModelFileError for bytes that are not a TFLite model).
    """
    ops = read_ops(flatbuffer, what)
    counts = Counter(op.name for op in ops)
    convs = [op for op in ops if op.name in (LCE_BCONV, FLOAT_CONV)]
    float_convs = [op for op in ops if op.name == FLOAT_CONV]
    rows: list[ConvRow] = []
    fallbacks: list[str] = []
    expected = None
    if model is not None:
        bconvs = expected_bconvs(model, upto)
        expected = len(bconvs)
        used: set[int] = set()
        stem_idx = float_convs[0].index if float_convs else None  # the float stem conv comes first
        for path, m in bconvs:
            row = ConvRow(path, m.kernel_size, m.stride, m.in_channels, m.out_channels)
            want = (m.out_channels, m.kernel_size, m.stride, m.in_channels)
            for op in convs:
                if op.index in used or op.index == stem_idx or _conv_signature(op) != want:
                    continue
                used.add(op.index)
                row.op, row.op_index, row.weight_bytes = op.name, op.index, op.weight_bytes
                row.padding = PADDING.get(op.options.get("padding"))
                row.fused_activation = ACTIVATION.get(op.options.get("fused_activation_function"))
                row.output_type = op.output_types[0] if op.output_types else None
                if op.name == LCE_BCONV:
                    pv = op.options.get("pad_values", 0)
                    row.pad_values = float(pv) if isinstance(pv, (int, float)) and math.isfinite(pv) else None
                break
            rows.append(row)
            if kind == "lce" and row.op != LCE_BCONV:
                fallbacks.append(f"{path} -> {row.op or 'not found'}")
    elif kind == "lce":
        fallbacks = [f"op {op.index} CONV_2D" for op in float_convs[1:]]
    n_lce = counts.get(LCE_BCONV, 0)
    ok = not fallbacks and (expected is None or kind != "lce" or n_lce == expected)
    return AuditReport(kind, len(flatbuffer), dict(counts), rows, fallbacks, n_lce, len(float_convs), expected, ok)


def model_from_meta(meta: dict) -> ReActNetA:
    """A ReActNetA skeleton (meta device, no weights) from the ``burn_edge.arch`` entry, validated as a
    checkpoint's ``"arch"`` is (:func:`train.checkpoint.stored_arch`: types, finite, bounded)."""
    import torch

    from train.checkpoint import stored_arch
    from train.models.reactnet import ReActNetA

    try:
        arch = json.loads(meta[META_ARCH]) if isinstance(meta[META_ARCH], str) else meta[META_ARCH]
        if not isinstance(arch, dict):
            raise TypeError(f"a {type(arch).__name__}, not an object")
        cfg = stored_arch({"arch": arch})
        with torch.device("meta"):
            return ReActNetA(cfg)
    except (BurnEdgeError, json.JSONDecodeError, TypeError, ValueError, OverflowError, RecursionError) as e:
        raise ExportError(f"the sidecar's {META_ARCH} is not a ReActNet architecture: {e}") from None


def audit_file(path: str | Path, model: ReActNetA | None = None, *, allow_float_fallback: bool = False,
               upto: str | None = None, write_json: bool = True) -> AuditReport:
    """Audit ``path``; write ``<model>.audit.json``; raise FloatFallbackError unless allowed."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"model not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read model {path}: {e.strerror or e}") from None
    meta = read_sidecar(path)  # validated, and bound to this model by its sha256 (runtimes.format)
    kind = (meta or {}).get(META_KIND, "lce")
    if model is None and meta is not None and META_ARCH in meta:
        model = model_from_meta(meta)
    report = audit_flatbuffer(data, model, kind=kind, upto=upto, what=str(path))
    if write_json:
        atomic_write_json(sidecar_path(path, AUDIT_SUFFIX), audit_dict(report, data))
    if not report.ok and not allow_float_fallback:
        raise fallback_error(report)
    return report


def audit_dict(report: AuditReport, flatbuffer: bytes) -> dict:
    """The ``.audit.json`` content: the report plus the audited model's sha256 (the artefact-set binding)."""
    return {**report.to_dict(), AUDIT_MODEL_SHA256: hashlib.sha256(flatbuffer).hexdigest()}


def fallback_error(report: AuditReport) -> FloatFallbackError:
    """The one-line error for an audit that found binary convs left as float ops (or a count mismatch)."""
    what = ", ".join(report.float_fallbacks[:4]) + (" ..." if len(report.float_fallbacks) > 4 else "")
    return FloatFallbackError(
        f"{len(report.float_fallbacks) or 'some'} binary conv(s) did not become LceBconv2d "
        f"({report.n_lce_bconv} LceBconv2d, expected {report.expected_bconv}): {what or 'count mismatch'}; "
        "check for exact-zero weights, a non-where binariser or stage-1 weights "
        "(pass --allow-float-fallback to keep the model anyway)")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.audit", description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the .tflite file to audit (its .meta.json sidecar gives the architecture)")
    p.add_argument("--allow-float-fallback", action="store_true",
                   help="exit 0 even when a binary conv stayed a float op (default: exit 2 with one message)")
    p.add_argument("--json", default=None, help="write the JSON report here (default <model>.audit.json)")
    return p


def main(argv=None) -> int:
    args = parse_args(get_args_parser(), argv)  # robust: one-line argparse errors (common.cli)
    try:
        if args.json:  # never write the report over the model or its sidecar; fail before the work
            refuse_same_path(args.json, args.model, sidecar_path(args.model), what="--json")
            ensure_writable_dir(Path(args.json).parent)
        report = audit_file(args.model, allow_float_fallback=True, write_json=args.json is None)
        if args.json:
            atomic_write_json(args.json, report.to_dict())
        print(report.render())
        if not report.ok and not args.allow_float_fallback:
            raise fallback_error(report)
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

