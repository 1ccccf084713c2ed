"""Runs INSIDE an aarch64 Python under qemu (stdlib + numpy + tflite_runtime only; no burn-edge imports).

``python3.11 float_twin_guest.py OUT.json MODEL.tflite [MODEL.tflite ...]`` (at most 15 models)

For each float model: load it in ``tflite_runtime.interpreter.Interpreter`` (1 thread; the wheel applies the
XNNPACK delegate to float models by default), feed a fixed random input, invoke once (warm-up: XNNPACK's
one-time weight packing), then invoke again between marker syscalls ``syscall(4242, i)`` / ``syscall(4242, 0)``
so the qemu counting plugin charges exactly that steady-state invoke to phase ``i`` (model ``i``, from 1).
Writes {model: {"phase": i, "output_sum": float}} to OUT.json.
"""

import ctypes
import json
import sys

import numpy as np
from tflite_runtime.interpreter import Interpreter

MARKER = 4242


def main(argv):
    out, models = argv[0], argv[1:]
    if not models or len(models) > 15:
        print("error: give 1..15 models", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = {}
    for i, path in enumerate(models, start=1):
        it = Interpreter(model_path=path, num_threads=1)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        x = np.random.default_rng(0).standard_normal(d["shape"]).astype(np.float32)
        it.set_tensor(d["index"], x)
        it.invoke()  # warm-up
        libc.syscall(ctypes.c_long(MARKER), ctypes.c_long(i))
        it.invoke()
        libc.syscall(ctypes.c_long(MARKER), ctypes.c_long(0))
        y = it.get_tensor(it.get_output_details()[0]["index"])
        result[path] = {"phase": i, "output_sum": float(np.asarray(y, np.float64).sum())}
    with open(out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
