"""ARM lane: an LCE model's binary convolutions on LCE's real aarch64 kernels, without a device.

``python -m runtimes.arm model.tflite [--image chelsea] [--lce-source DIR] [--json out.json]``

For every ``LceBconv2d`` of the model, with its real shape, packed weights, multipliers, biases, padding,
stride and dilation, and the input the x86 LCE interpreter feeds it for a real photo
(:mod:`runtimes.arm_lane.layers`), LCE v0.16.0's own kernels are cross-compiled for aarch64 and run under
``qemu-aarch64 -cpu cortex-a72`` (:mod:`runtimes.arm_lane.lane`): the default ruy-based BGEMM path (what
``lce_benchmark_model`` runs on a Pi) and the indirect BGEMM path. Printed:

1. a verdict table: bitpacking and XOR-popcount accumulators exact; float output within 2 ulps of the
   terms of the x86 interpreter's output (int8 within 1, bitpacked exact);
2. a cost table: aarch64 instructions executed per layer and path, counted by a qemu TCG plugin between
   marker syscalls (deterministic: the same count on every run, whatever the machine's load), with the
   kernel that ran; every layer that lost LCE's NEON/assembly kernel is flagged ``PORTABLE FALLBACK``.
   Instructions are not cycles: the table ranks layers and paths, it does not predict milliseconds.

Also, read from source without running anything (:func:`dispatch_table`): which kernel LCE's dispatch
conditions choose for each layer. Without qemu, the cross compiler or the sources, the lane part reports
exactly what is missing, for every layer, and the command exits 0 with the source-derived table only
(``--require-lane`` makes that exit 2).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common.cli import parse_args
from common.errors import BurnEdgeError, ModelFileError
from common.files import atomic_write_json
from runtimes.arm_lane import build as lane_build
from runtimes.arm_lane.build import LaneUnavailable, prerequisites
from runtimes.tflite_flatbuffer import LCE_BCONV, read_ops

BITWIDTH = 32
UINT16_MAX = 65535
DEFAULT_IMAGE = "chelsea"


def _bitpacked(c: int) -> int:
    return (c + BITWIDTH - 1) // BITWIDTH


def layer_dispatch(op) -> dict:
    """LCE v0.16.0's aarch64 kernel choice for one LceBconv2d ``OpInfo`` (default and indirect BGEMM), read from
    ``tflite/kernels/bconv2d.cc`` (int16 accumulators when ``Fh*Fw*Cin + 512 < 65536``; ruy NEON for float/int8
    output) and ``core/indirect_bgemm/select_kernel.h`` (assembly only when ``32 * packed input size / groups
    < 65535`` and the output is not bitpacked)."""
    in_shape, filt = op.input_shapes[0], op.input_shapes[1]
    out_shape = op.output_shapes[0]
    cin = int(op.options.get("channels_in", filt[3] * BITWIDTH))
    cout, fh, fw = filt[0], filt[1], filt[2]
    groups = max(1, _bitpacked(cin) // filt[3]) if filt[3] else 1
    bitpacked_out = op.output_types[0] == "int32"
    depth = fh * fw * cin
    int16_acc = depth + 512 < 1 << 16
    default = "neon" if (int16_acc or not bitpacked_out) else "portable"
    in_flat = in_shape[0] * in_shape[1] * in_shape[2] * _bitpacked(cin)
    max_acc = BITWIDTH * in_flat // groups
    indirect = "neon" if (max_acc < UINT16_MAX and not bitpacked_out) else "portable"
    why = ""
    if indirect == "portable":
        why = ("bitpacked output" if bitpacked_out else
               f"input {in_shape[1]}x{in_shape[2]}x{cin}: 32*packed size {max_acc} >= 65535")
    return {"op": op.index, "input": f"{in_shape[1]}x{in_shape[2]}x{cin}", "filter": f"{fh}x{fw}x{cin}->{cout}",
            "stride": int(op.options.get("stride_height", 1)), "output": f"{out_shape[1]}x{out_shape[2]}",
            "default": default + (" (int16 acc)" if int16_acc else " (int32 acc)"), "indirect": indirect,
            "indirect_fallback_reason": why}


def dispatch_table(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such file")
    rows = [layer_dispatch(op) for op in read_ops(p.read_bytes(), str(p)) if op.name == LCE_BCONV]
    if not rows:
        raise ModelFileError(f"{p}: no LceBconv2d op (not an LCE model?)")
    return rows


def format_table(rows: list[dict]) -> str:
    cols = ["op", "input", "filter", "stride", "output", "default", "indirect"]
    lines = [" | ".join(cols)]
    for r in rows:
        flag = "  <-- PORTABLE FALLBACK: " + r["indirect_fallback_reason"] if r["indirect"] == "portable" else ""
        lines.append(" | ".join(str(r[c]) for c in cols) + flag)
    n = sum(r["indirect"] == "portable" for r in rows)
    lines.append(f"{len(rows)} LceBconv2d layers; indirect BGEMM loses the aarch64 kernel on {n}; "
                 f"default BGEMM on {sum(r['default'].startswith('portable') for r in rows)} "
                 "(read from LCE v0.16.0 source)")
    return "\n".join(lines)


def check_image_spec(spec: str) -> None:
    """Raise BurnEdgeError unless ``spec`` is an existing file or a scikit-image sample name."""
    if Path(spec).is_file():
        return
    import skimage.data

    if not callable(getattr(skimage.data, spec, None)) or spec.startswith("_"):
        raise BurnEdgeError(f"--image {spec!r} is neither a file nor a scikit-image sample (e.g. chelsea)")


def load_image(spec: str, model_path: str | Path) -> np.ndarray:
    """A real photo as the model's input: ``spec`` is a scikit-image sample name (``chelsea``, ``astronaut``...)
    or an image file; resized to the model's input size and normalised with its metadata (mean/std), NHWC
    batch 1 float32 (LCE models are NHWC)."""
    from runtimes.base import ModelMeta, preprocess
    from runtimes.tflite_flatbuffer import load_schema

    schema = load_schema()
    data = Path(model_path).read_bytes()
    g = schema.Model.GetRootAs(data, 0).Subgraphs(0)
    shape = g.Tensors(g.Inputs(0)).ShapeAsNumpy().tolist()
    if len(shape) != 4 or shape[3] != 3:
        raise ModelFileError(f"{model_path}: expected one NHWC image input, got shape {shape}")
    if Path(spec).is_file():
        from PIL import Image

        with Image.open(spec) as im:
            img = np.asarray(im.convert("RGB"))
    else:
        import skimage.data

        check_image_spec(spec)
        img = getattr(skimage.data, spec)()
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = img[:, :, :3]
    from skimage.transform import resize

    img = resize(img, (shape[1], shape[2]), anti_aliasing=True, preserve_range=False).astype(np.float32)
    x = preprocess(img[None], ModelMeta.from_sidecar(model_path), layout="NHWC")  # (1, 3, H, W)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def result_rows(results) -> list[dict]:
    """One JSON-able row per layer: checks, kernels and instruction counts."""
    from runtimes.arm_lane.lane import PHASE_BITPACK, PHASE_IM2COL, PHASE_KERNEL

    rows = []
    for r in results:
        L = r.layer
        row = {"op": L.op, "layer": L.describe(), "out_type": L.out_type, "ok": r.ok,
               "checks": {k: dict(v) for k, v in r.checks.items()}}
        for path in ("bgemm", "indirect"):
            run = r.runs.get(path)
            if run:
                row[path] = {"kernel": run.kernel, "neon": not run.kernel.startswith("portable"),
                             "insns": run.insns.get(PHASE_KERNEL, 0)}
                if path == "bgemm":
                    row[path]["im2col_standin_insns"] = run.insns.get(PHASE_IM2COL, 0)
        if "bitpack" in r.runs:
            b = r.runs["bitpack"]
            row["bitpack"] = {"kernel": b.kernel, "neon": not b.kernel.startswith("portable"),
                              "insns": b.insns.get(PHASE_BITPACK, 0)}
        rows.append(row)
    return rows


FALLBACK_FLAG = "<== PORTABLE FALLBACK"
VERDICT_COLUMNS = ("bitpack", "acc-bgemm", "bgemm", "acc-indirect", "indirect")
NOT_CYCLES = "aarch64 instructions executed (qemu TCG plugin, cortex-a72 model, 1 thread); not cycles."
FLOAT_TWIN = "float twin (float CONV_2D per layer, aarch64 tflite-runtime + XNNPACK)"


def verdict_table(rows: list[dict]) -> dict:
    """The per-layer verdicts as a table: {"header": [...], "rows": [[cell, ...]], "failures": [line, ...],
    "summary": line}; one cell per check (``ok``/``FAIL``, float checks with their max ulps of the terms).
    :func:`format_verdicts` prints it, the pipeline report renders it as markdown."""
    out_rows, failures = [], []
    for r in rows:
        cells = []
        for c in VERDICT_COLUMNS:
            ch = r["checks"].get(c)
            cells.append("-" if ch is None else ("ok" if ch["ok"] else "FAIL") + (
                f" ({ch['max_ulp_terms']:.2f} ulp)" if "max_ulp_terms" in ch else ""))
        out_rows.append([r["op"], r["layer"], *cells, "PASS" if r["ok"] else "FAIL"])
        failures += [f"op {r['op']} {c}: {ch['detail']}" for c, ch in r["checks"].items() if not ch["ok"]]
    summary = (f"{sum(r['ok'] for r in rows)}/{len(rows)} layers agree with the x86 LCE interpreter on LCE's "
               "aarch64 kernels (bitpacking, accumulators exact; float within 2 ulps of the terms)")
    return {"header": ["op", "layer", *VERDICT_COLUMNS, "verdict"], "rows": out_rows, "failures": failures,
            "summary": summary}


def format_verdicts(rows: list[dict]) -> str:
    t = verdict_table(rows)
    lines = [" | ".join(t["header"])]
    for r, cells in zip(rows, t["rows"]):
        lines.append(" | ".join(map(str, cells)))
        lines += [f"    {c}: {ch['detail']}" for c, ch in r["checks"].items() if not ch["ok"]]
    return "\n".join([*lines, t["summary"]])


def cost_table(rows: list[dict], float_twin_missing: str | None = None) -> dict:
    """The instruction-count table: {"header", "rows", "total" (one row), "notes" (lines), "fallbacks" (one line
    per layer and path that lost LCE's NEON/assembly kernel)}. Kernel cells of a fallback end in
    ``FALLBACK_FLAG``; with the float twin's counts, two more columns: its CONV_2D count and float / LCE default."""
    has_float = bool(rows) and all("float_conv_insns" in r for r in rows)
    header = ["op", "layer", "default BGEMM kernel", "insns", "indirect BGEMM kernel", "insns", "bitpack insns"]
    if has_float:
        header += ["float CONV_2D insns (XNNPACK)", "float / LCE default"]
    tot = {"bgemm": 0, "indirect": 0, "bitpack": 0, "im2col": 0, "float": 0}
    fallbacks, out_rows = [], []
    for r in rows:
        b, i, p = r.get("bgemm"), r.get("indirect"), r.get("bitpack")
        cells = [r["op"], r["layer"]]
        for name, d in (("bgemm", b), ("indirect", i)):
            if d is None:
                cells += ["-", "-"]
                continue
            tot[name] += d["insns"]
            cells += [f"{d['kernel']}{'' if d['neon'] else '  ' + FALLBACK_FLAG}", f"{d['insns']:,}"]
            if not d["neon"]:
                fallbacks.append(f"op {r['op']} ({r['layer']}) {name}: {d['kernel']}")
        if b:
            tot["im2col"] += b.get("im2col_standin_insns", 0)
        if p:
            tot["bitpack"] += p["insns"]
        cells.append(f"{p['insns']:,}" if p else "-")
        if has_float:
            tot["float"] += r["float_conv_insns"]
            ratio = r["float_conv_insns"] / b["insns"] if b and b["insns"] else float("nan")
            cells += [f"{r['float_conv_insns']:,}", f"{ratio:.1f}x"]
        out_rows.append(cells)
    total = ["total", f"{len(rows)} LceBconv2d", "", f"{tot['bgemm']:,}", "", f"{tot['indirect']:,}",
             f"{tot['bitpack']:,}"]
    if has_float:
        total += [f"{tot['float']:,}", f"{tot['float'] / max(1, tot['bgemm']):.1f}x"]
    notes = []
    if tot["im2col"]:
        notes.append(f"(default BGEMM: plus {tot['im2col']:,} instructions in this lane's im2col stand-in for "
                     "TFLite's optimized im2col, not counted above)")
    notes.append(NOT_CYCLES)
    if not has_float:
        notes.append(f"{FLOAT_TWIN}: not run: {float_twin_missing or 'no counts'}")
    return {"header": header, "rows": out_rows, "total": total, "notes": notes, "fallbacks": fallbacks}


def format_costs(rows: list[dict], float_twin_missing: str | None = None) -> str:
    """The instruction-count table as text; with the float twin, its CONV_2D count and float / LCE (default) ratio."""
    t = cost_table(rows, float_twin_missing)
    lines = [" | ".join(t["header"]), *(" | ".join(map(str, c)) for c in t["rows"]), " | ".join(t["total"])]
    lines += t["notes"]
    if t["fallbacks"]:
        lines.append(f"!!! {len(t['fallbacks'])} PORTABLE FALLBACK(S): LCE's NEON/assembly kernel is NOT used for:")
        lines += [f"!!!   {f}" for f in t["fallbacks"]]
    else:
        lines.append("every layer ran LCE's NEON/assembly kernels on both paths")
    return "\n".join(lines)


def run_lane(model: str | Path, image: str = DEFAULT_IMAGE, source: str | Path | None = None,
             progress=None, tol_ulp: float | None = None, aarch64_python: str | Path | None = None,
             float_twin: bool = True) -> dict:
    """Build (cached), extract the layers, run them (and, when an aarch64 Python is available, the float twin's
    convs); returns {"layers": rows, "float_twin": None or why not, "driver", "image", "seconds"}."""
    from runtimes.arm_lane import float_twin as ft
    from runtimes.arm_lane.lane import FLOAT_ULP, run_layers
    from runtimes.arm_lane.layers import extract_layers

    t0 = time.monotonic()
    built = lane_build.build(source)
    layers = extract_layers(model, load_image(image, model))
    results = run_layers(layers, built["aarch64"], built["plugin"], tol_ulp=tol_ulp or FLOAT_ULP,
                         progress=progress)
    rows = result_rows(results)
    why = ft.missing(aarch64_python) if float_twin else "not requested (--no-float-twin)"
    if why is None:
        counts = ft.count_float_convs(layers, built["plugin"], aarch64_python)
        for row, layer in zip(rows, layers):
            row["float_conv_insns"] = counts[ft.shape_key(layer)]
    return {"layers": rows, "float_twin": why, "driver": str(built["aarch64"]), "image": image,
            "seconds": round(time.monotonic() - t0, 1)}


def whole_model_estimate(model, float_model, lane: dict, aarch64_python=None, source=None) -> dict:
    """Whole-model aarch64 instructions: the float twin counted in one invoke; the LCE model estimated as the
    float twin minus its binary-layer convs (each counted as a one-op model) plus LCE's bconvs (default path)
    and LceQuantize bitpacking. An estimate: the binarisers differ (float GREATER_EQUAL/SELECT_V2 vs LCE's
    SUB + LceQuantize) and XNNPACK may fuse a conv with its neighbours inside the whole model."""
    from runtimes.arm_lane import float_twin as ft

    if not Path(float_model).is_file():
        raise ModelFileError(f"{float_model}: no such file")
    rows = lane["layers"]
    why = ft.missing(aarch64_python) or (None if all("float_conv_insns" in r for r in rows)
                                         else "the per-layer float twin did not run")
    if why:
        return {"unavailable": why}
    total = ft.count_model(float_model, lane_build.build(source)["plugin"], aarch64_python)
    convs = sum(r["float_conv_insns"] for r in rows)
    lce = total - convs + sum(r["bgemm"]["insns"] for r in rows) + sum(r.get("bitpack", {}).get("insns", 0)
                                                                        for r in rows)
    return {"float_model": str(float_model), "float_total": total, "float_binary_layer_convs": convs,
            "lce_estimate": lce, "ratio": total / lce if lce > 0 else float("nan")}


def format_whole_model(w: dict) -> str:
    if "unavailable" in w or "error" in w:
        return f"whole model: not run: {w.get('unavailable') or 'failed: ' + w['error']}"
    return (f"whole model, one invoke: float twin {w['float_total']:,} aarch64 instructions "
            f"(its binary-layer convs as one-op models: {w['float_binary_layer_convs']:,}); "
            f"LCE model estimated {w['lce_estimate']:,} -> float / LCE ~ {w['ratio']:.1f}x (estimate)")


LANE_ERRORS = (BurnEdgeError, LaneUnavailable, RuntimeError, OSError, subprocess.TimeoutExpired)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:400]


def arm_report(model: str | Path, *, image: str = DEFAULT_IMAGE, source: str | Path | None = None,
               aarch64_python: str | Path | None = None, float_model: str | Path | None = None,
               float_twin: bool = True, tol_ulp: float | None = None, progress=None,
               not_run: str | None = None) -> dict:
    """The lane's whole result for one LCE model: what ``python -m runtimes.arm --json`` writes and what
    ``runtimes.bench --arm`` and the pipeline's ``arm`` phase show.

    Returns {"model", "image", "dispatch": :func:`dispatch_table` rows (read from source, always there),
    "prerequisites": {thing: None or why it is missing}, "lane": L} where L is :func:`run_lane`'s dict (plus
    "whole_model" from :func:`whole_model_estimate` when ``float_model`` is given), or {"unavailable":
    [reasons]} when a prerequisite is missing or ``not_run`` gives a reason not to run, or {"error": line}
    when the lane failed. Raises ModelFileError when ``model`` is not an LCE model, BurnEdgeError for a bad
    ``image``."""
    rows = dispatch_table(model)
    check_image_spec(image)
    out: dict = {"model": str(model), "image": image, "dispatch": rows, "prerequisites": prerequisites(source)}
    reasons = [not_run] if not_run else lane_build.missing(source)
    if reasons:
        out["lane"] = {"unavailable": reasons}
        return out
    try:
        lane = run_lane(model, image, source, progress=progress, tol_ulp=tol_ulp, aarch64_python=aarch64_python,
                        float_twin=float_twin)
    except LANE_ERRORS as e:
        out["lane"] = {"error": _one_line(e)}
        return out
    if float_model:
        try:
            lane["whole_model"] = whole_model_estimate(model, float_model, lane, aarch64_python, source)
        except LANE_ERRORS as e:
            lane["whole_model"] = {"error": _one_line(e)}
    out["lane"] = lane
    return out


def lane_passed(report: dict) -> bool | None:
    """True when the lane ran and every layer agreed; False when a layer disagreed; None when it did not run."""
    layers = report["lane"].get("layers")
    return None if layers is None else all(r["ok"] for r in layers)


def not_run_reason(report: dict) -> str | None:
    """Why the lane did not run for this report (None when it ran)."""
    lane = report["lane"]
    if "unavailable" in lane:
        return "; ".join(lane["unavailable"])
    return f"the lane failed: {lane['error']}" if "error" in lane else None


def format_report(report: dict) -> str:
    """:func:`arm_report` as text: the verdict and cost tables (and the whole-model line), or one line per
    LceBconv2d saying exactly why it was not run."""
    why = not_run_reason(report)
    if why:
        return "\n".join(f"ARM lane, op {r['op']} ({r['filter']} on {r['input']}): not run: {why}"
                         for r in report["dispatch"])
    lane = report["lane"]
    parts = [f"Per-layer equivalence, aarch64 (qemu {lane_build.QEMU_CPU}) vs x86 LCE interpreter, "
             f"image {report['image']}:", format_verdicts(lane["layers"]), "",
             "Cost per LceBconv2d (aarch64 instructions in the kernel call):",
             format_costs(lane["layers"], lane["float_twin"])]
    if "whole_model" in lane:
        parts.append(format_whole_model(lane["whole_model"]))
    parts.append(f"(lane took {lane['seconds']} s)")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtimes.arm", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="LCE .tflite model")
    ap.add_argument("--image", default=DEFAULT_IMAGE,
                    help="image file or scikit-image sample name fed to the model (default: %(default)s)")
    ap.add_argument("--lce-source", "--third-party", dest="source",
                    help=f"folder with larq_compute_engine/, ruy/, gemmlowp/, tflite-micro/, litert/ (default "
                         f"${lane_build.SOURCE_ENV} or ../shared/third_party beside the repo)")
    ap.add_argument("--json", help="write the tables as JSON")
    ap.add_argument("--tolerance-ulp", type=float, default=None, help="float tolerance in ulps of the terms "
                                                                      "(default 2)")
    ap.add_argument("--aarch64-python", help="aarch64 Python folder for the float twin (default "
                                             "$BURN_EDGE_AARCH64_PYTHON; runtimes/arm_lane/aarch64_python.sh makes it)")
    ap.add_argument("--float-model", help="the whole float twin .tflite (export.to_lce --float): count one "
                                          "invoke and estimate the whole-model LCE / float instruction ratio")
    ap.add_argument("--no-float-twin", action="store_true", help="skip the float twin's counts")
    ap.add_argument("--source-only", action="store_true", help="only the source-derived dispatch table")
    ap.add_argument("--require-lane", action="store_true", help="exit 2 when the emulated lane cannot run")
    a = parse_args(ap, argv)  # one-line argparse errors (common.cli)
    try:
        if a.tolerance_ulp is not None and not a.tolerance_ulp >= 0:
            raise BurnEdgeError("--tolerance-ulp must be >= 0")
        rows = dispatch_table(a.model)
        if not a.source_only:
            check_image_spec(a.image)
        if a.float_model and not Path(a.float_model).is_file():
            raise BurnEdgeError(f"--float-model {a.float_model}: no such file")
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("Kernel dispatch read from LCE v0.16.0 source:")
    print(format_table(rows))
    out: dict = {"dispatch": rows, "prerequisites": prerequisites(a.source)}
    code = 0
    if not a.source_only:
        out = arm_report(a.model, image=a.image, source=a.source, aarch64_python=a.aarch64_python,
                         float_model=a.float_model, float_twin=not a.no_float_twin, tol_ulp=a.tolerance_ulp,
                         progress=lambda i, n, r: print(f"  [{i}/{n}] op {r.layer.op} {r.layer.describe()}: "
                                                        f"{'PASS' if r.ok else 'FAIL'}", file=sys.stderr))
        lane = out["lane"]
        error = lane.get("error") or lane.get("whole_model", {}).get("error")
        if error:
            print(f"error: {'--float-model: ' if 'layers' in lane else ''}{error}", file=sys.stderr)
            return 2
        print(("\n" if "layers" in lane else "") + format_report(out))
        passed = lane_passed(out)
        code = (2 if a.require_lane else 0) if passed is None else (0 if passed else 1)
    if a.json:
        atomic_write_json(a.json, out)
    return code


if __name__ == "__main__":
    sys.exit(main())
