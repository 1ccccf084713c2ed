"""ARM lane, first step: which LCE aarch64 kernel each ``LceBconv2d`` of a model gets, and what the lane needs.

``python -m runtimes.arm model.tflite [--third-party DIR] [--json out.json]``

This module does not yet run LCE's aarch64 kernels under qemu. It reads every ``LceBconv2d`` from the
model (``runtimes.tflite_flatbuffer``) and applies the two dispatch conditions of LCE v0.16.0, as written in
its source, to the layer's real shapes:

- default (ruy) BGEMM, ``tflite/kernels/bconv2d.cc`` ``EvalChooseKernelType``: on aarch64 the 16-bit
  accumulator kernel runs when ``filter_h * filter_w * channels_in + 512 < 65536``, else 32-bit accumulators.
  Both use ruy's NEON path for float/int8 output (``core/bgemm/bgemm.h``); bitpacked output with 32-bit
  accumulators uses ruy's portable kernel.
- indirect BGEMM, ``core/indirect_bgemm/select_kernel.h`` ``SelectRuntimeKernel``: the aarch64 assembly
  kernels run only when ``32 * (bitpacked input size) / groups < 65535`` (the whole input tensor, not the
  filter window), and never for bitpacked output; otherwise the portable ``Kernel4x2Portable``.

These verdicts are read from source, not measured on aarch64. ``prerequisites()`` says what is missing for
the emulated run (qemu-user, the aarch64 cross g++, the LCE/ruy/gemmlowp sources).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from common.errors import BurnEdgeError, ModelFileError
from runtimes.tflite_flatbuffer import LCE_BCONV, read_ops

BITWIDTH = 32
UINT16_MAX = 65535
REPO_ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY_ENV = "BURN_EDGE_THIRD_PARTY"
SOURCE_MARKERS = {
    "larq_compute_engine": "larq_compute_engine/larq_compute_engine/core/indirect_bgemm/select_kernel.h",
    "ruy": "ruy/ruy/trmul.h",
    "gemmlowp": "gemmlowp/fixedpoint/fixedpoint.h",
}


def third_party_dir(explicit: str | Path | None = None) -> Path:
    """The upstream-sources directory: ``explicit``, else $BURN_EDGE_THIRD_PARTY, else ../shared/third_party."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(THIRD_PARTY_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "third_party"


def prerequisites(third_party: str | Path | None = None) -> dict[str, str | None]:
    """Each thing the emulated lane needs -> None when present, else why it is missing."""
    root = third_party_dir(third_party)
    out: dict[str, str | None] = {
        "qemu-aarch64": None if shutil.which("qemu-aarch64") else "qemu-aarch64 not found (apt-get install qemu-user)",
        "aarch64-linux-gnu-g++": None if shutil.which("aarch64-linux-gnu-g++") else
        "aarch64-linux-gnu-g++ not found (apt-get install g++-aarch64-linux-gnu)",
    }
    for name, rel in SOURCE_MARKERS.items():
        out[name] = None if (root / rel).is_file() else f"{root / rel} missing (pass --third-party DIR)"
    return out


def _bitpacked(c: int) -> int:
    return (c + BITWIDTH - 1) // BITWIDTH


def layer_dispatch(op) -> dict:
    """LCE v0.16.0's aarch64 kernel choice for one LceBconv2d ``OpInfo`` (default and indirect BGEMM)."""
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
                 "(read from LCE v0.16.0 source, not measured on aarch64)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtimes.arm", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="LCE .tflite model")
    ap.add_argument("--third-party", help=f"LCE/ruy/gemmlowp sources (default ${THIRD_PARTY_ENV} or "
                                          "../shared/third_party)")
    ap.add_argument("--json", help="write the table and prerequisites as JSON")
    a = ap.parse_args(argv)
    try:
        rows = dispatch_table(a.model)
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(rows))
    pre = prerequisites(a.third_party)
    for name, why in pre.items():
        print(f"emulated-run prerequisite {name}: {'ok' if why is None else 'MISSING: ' + why}")
    print("emulated aarch64 run and instruction counts: not implemented yet")
    if a.json:
        Path(a.json).write_text(json.dumps({"layers": rows, "prerequisites": pre}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
