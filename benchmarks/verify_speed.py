"""Time ``export.verify`` on the files users ship: full-size ReActNet-A exported to ONNX and LCE, then judged
stage by stage (the given files cut at their stage marks) on onnxruntime and the three LCE kernels.

    python benchmarks/verify_speed.py [--input-size 224] [--images 16]

Goal: full ReActNet-A at 224x224, given ONNX + given LCE (three kernels), 16 images, <= 3 min of verify on
2 idle cores. The model is the realistic random one of ``tests/realistic.py`` (cost does not depend on the
values) and the images are the scikit-image sample photos. The export (what ``export.to_onnx`` /
``export.to_lce`` would write) is timed separately; verify is timed alone. Prints wall and process CPU
time per phase, the report and PASS/FAIL; asserts nothing. Timings on a shared machine are noisy: compare
CPU time too, and the load average printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = _bench.args_parser(__doc__, add_help)
    p.add_argument("--input-size", type=int, default=224, help="input resolution (default 224)")
    p.add_argument("--images", type=int, default=16, help="sample photos, 1..16 (default 16)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from export import lce
    from export.onnx_graph import build_onnx
    from export.samples import load_inputs
    from export.verify import RUNTIMES, render, verify
    from tests.realistic import realistic_reactnet
    from train.data import IMAGENET_MEAN, IMAGENET_STD

    model = realistic_reactnet(args.input_size)
    x, _ = load_inputs("samples", args.input_size, IMAGENET_MEAN, IMAGENET_STD, limit=args.images)
    out = Path(tempfile.mkdtemp(prefix="verify_speed_"))
    t0 = time.perf_counter()
    (out / "model.onnx").write_bytes(build_onnx(model).SerializeToString())
    (out / "model.tflite").write_bytes(lce.convert(lce.build_keras(model)))
    print(f"export (ONNX + LCE, the files judged below): {time.perf_counter() - t0:.1f} s wall")
    t0, c0 = time.perf_counter(), time.process_time()
    marks = []
    rep = verify(model, x, runtimes=RUNTIMES, images="samples", onnx_path=out / "model.onnx",
                 lce_path=out / "model.tflite",
                 progress=lambda s: marks.append((s, time.perf_counter() - t0, time.process_time() - c0)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(render(rep))
    print(f"\nReActNet-A {args.input_size}px, {len(x)} images, runtimes {', '.join(RUNTIMES)}: "
          f"verify wall {wall:.1f} s, process CPU {cpu:.1f} s (test-load children not counted), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, w, c in marks:
        print(f"  '{name}' started at wall {w:.1f} s, CPU {c:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
