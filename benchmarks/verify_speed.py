"""Time ``export.verify`` on the full-size ReActNet-A: ONNX + the three LCE kernels, stage by stage and end to end.

    python benchmarks/verify_speed.py [--input-size 224] [--images 16]

Target (issue 11): full ReActNet-A at 224x224, ONNX + three LCE kernels, 16 images, <= 3 min on 2 cores.
The model is the realistic random one of ``tests/realistic.py`` (cost does not depend on the values) and
the images are the scikit-image sample photos. Prints wall and process CPU time per phase, the verdict
summary and PASS/FAIL; asserts nothing. Timings on a shared machine are noisy: compare CPU time too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = _bench.args_parser(__doc__, add_help)
    p.add_argument("--input-size", type=int, default=224, help="input resolution (default 224)")
    p.add_argument("--images", type=int, default=16, help="sample photos, 1..16 (default 16)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from export.samples import load_inputs
    from export.verify import RUNTIMES, render, verify
    from tests.realistic import realistic_reactnet
    from train.data import IMAGENET_MEAN, IMAGENET_STD

    model = realistic_reactnet(args.input_size)
    x, _ = load_inputs("samples", args.input_size, IMAGENET_MEAN, IMAGENET_STD, limit=args.images)
    t0, c0 = time.perf_counter(), time.process_time()
    marks = []
    rep = verify(model, x, runtimes=RUNTIMES, images="samples",
                 progress=lambda s: marks.append((s, time.perf_counter() - t0, time.process_time() - c0)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(render(rep))
    print(f"\nReActNet-A {args.input_size}px, {len(x)} images, runtimes {', '.join(RUNTIMES)}: "
          f"wall {wall:.1f} s, process CPU {cpu:.1f} s, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    for name, w, c in marks:
        print(f"  '{name}' started at wall {w:.1f} s, CPU {c:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
