"""Time the export of a full ReActNet-A (ONNX + LCE + audit) and compare LCE vs float TFLite sizes.

    OMP_NUM_THREADS=1 python benchmarks/export_speed.py [--input-size 224] [--width 1.0] [--no-float]

Targets (issue 4): ONNX + LCE + audit <= 60 s on 2 cores; LCE flatbuffer <= 1/12 of the float TFLite
flatbuffer. The network has random weights (export cost does not depend on the values). Prints one line per
stage and a summary; nothing is asserted. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = _bench.args_parser(__doc__, add_help)
    p.add_argument("--input-size", type=int, default=224, help="input resolution (default 224)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier (default 1.0 = ReActNet-A)")
    p.add_argument("--padding", choices=("zero", "one"), default="zero", help="binary conv padding (default zero)")
    p.add_argument("--no-float", action="store_true", help="skip the float TFLite export (no size ratio)")
    p.add_argument("--out-dir", default=None, help="keep the exported files here (default: a temp folder)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    import torch

    from common.tfenv import quiet_tensorflow
    from train.models import reactnet_a

    quiet_tensorflow()
    from export.audit import audit_flatbuffer
    from export.lce import build_keras, convert, convert_float
    from export.onnx_graph import build_onnx, save_onnx

    torch.manual_seed(0)
    model = reactnet_a(width=args.width, input_size=args.input_size, padding=args.padding).eval()
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="export_speed_"))
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        times[name] = time.perf_counter() - t0
        print(f"{name:<22} {times[name]:7.1f} s", flush=True)
        return r

    timed("onnx build+save", lambda: save_onnx(build_onnx(model), out / "model.onnx"))
    km = timed("keras build (lce)", lambda: build_keras(model))
    lce_bytes = timed("lce convert", lambda: convert(km))
    report = timed("audit", lambda: audit_flatbuffer(lce_bytes, model))
    (out / "model.tflite").write_bytes(lce_bytes)
    total = sum(times.values())
    print(f"{'ONNX + LCE + audit':<22} {total:7.1f} s   (target <= 60 s)")
    print(f"audit: LceBconv2d {report.n_lce_bconv}, float CONV_2D {report.n_float_conv}, "
          f"fallbacks {len(report.float_fallbacks)}, ok={report.ok}")
    onnx_size = (out / "model.onnx").stat().st_size
    print(f"sizes: onnx {onnx_size:,} B, lce {len(lce_bytes):,} B")
    if not args.no_float:
        km_f = timed("keras build (float)", lambda: build_keras(model, float_model=True))
        float_bytes = timed("float convert", lambda: convert_float(km_f))
        (out / "model-float.tflite").write_bytes(float_bytes)
        ratio = len(lce_bytes) / len(float_bytes)
        print(f"sizes: float tflite {len(float_bytes):,} B; lce/float = {ratio:.4f} = 1/{1 / ratio:.1f} "
              f"(target <= 1/12)")
    print(f"files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
