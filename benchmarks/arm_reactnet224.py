"""The ARM lane on the full ReActNet-A at 224²: the record behind README's aarch64 tables.

    python benchmarks/arm_reactnet224.py --out runs/arm224            # exports, runs the lane, writes arm.json
    python -m pipeline.readme_figures --record-arm runs/arm224/arm.json --write   # README's ARM block from it

Builds ReActNet-A at 224² with the realistic random state of ``tests/realistic.py`` (random latent weights,
realistic BatchNorm statistics and learnable biases; seed 0), exports it as the LCE model and its float TFLite
twin exactly as ``python -m export.to_lce`` (and ``--float``) do, and runs ``runtimes.arm.arm_report`` on it
with the float twin's per-layer counts and its whole-model count, on scikit-image's ``chelsea`` photo.
The instruction counts are deterministic (qemu's plugin counts, not time), so the record changes only when
the lane, LCE or the exporter changes. Needs the ARM lane's prerequisites (``python -m runtimes.arm --help``);
about 10 minutes on 2 idle cores (2 of them the export, the rest qemu).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings


def main(argv=None) -> int:
    p = _bench.args_parser(__doc__)
    p.add_argument("--out", default="runs/arm224", help="folder for the two models and arm.json")
    p.add_argument("--image", default="chelsea", help="photo fed to the model (default chelsea)")
    args = p.parse_args(argv)
    from common.errors import BurnEdgeError
    from common.files import atomic_write_bytes, atomic_write_json
    from common.tfenv import native_stderr_silenced, quiet_tensorflow
    from export.lce import build_keras, convert, convert_float
    from runtimes.arm import arm_report, format_report
    from tests.realistic import realistic_reactnet

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    quiet_tensorflow()
    model = realistic_reactnet(224)
    lce, flt = out / "reactnet224.tflite", out / "reactnet224_float.tflite"
    with native_stderr_silenced():  # the converter's native "Ignored output_format" lines
        atomic_write_bytes(lce, convert(build_keras(model)))
        atomic_write_bytes(flt, convert_float(build_keras(model, float_model=True)))
    print(f"exported {lce} and {flt} in {time.time() - t0:.0f} s", flush=True)
    try:
        report = arm_report(lce, image=args.image, float_model=flt,
                            progress=lambda i, n, r: print(f"  [{i}/{n}] op {r.layer.op} {r.layer.describe()}: "
                                                           f"{'PASS' if r.ok else 'FAIL'}", flush=True))
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["model"] = lce.name  # the record names the file, not this machine's path
    atomic_write_json(out / "arm.json", report)
    print(format_report(report))
    print(f"wrote {out / 'arm.json'} ({time.time() - t0:.0f} s in all)")
    return 0 if "layers" in report["lane"] else 2


if __name__ == "__main__":
    sys.exit(main())
