"""Load a model in a child process first, so a native crash becomes an ``error:`` line, not the user's exit code.

The TFLite flatbuffer verifier (:mod:`runtimes.tflite_verify`) and ``onnx.checker`` catch truncated and
out-of-bounds files, but not every semantic corruption a kernel trips over: a bit-flipped stride of 0 or a
corrupt ``LceBconv2d`` flexbuffer makes the native interpreter abort (SIGABRT/SIGSEGV) inside ``Prepare``. No
Python verifier can know every kernel's invariants, so CLIs that load untrusted model files call
:func:`probe_load` first: ``python -m runtimes.isolate`` loads the model with the same backend options and runs
one zero input; if that child dies of a signal (or hangs), the parent raises ModelFileError and never loads
the file itself. Probes are cached per (file sha256, backend, kernels, xnnpack) for the life of the process.

    python -m runtimes.isolate '[["model.tflite", "lce", ["indirect"]]]'   # exit 0 / 2 / signal
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from common.errors import BurnEdgeError, ModelFileError
from common.files import sha256_file

PROBE_TIMEOUT_S = 300
_probed: set[tuple] = set()


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def probe_models(specs: Sequence[tuple[str | Path, str | None, Sequence[str]]], xnnpack: bool = True,
                 timeout: float = PROBE_TIMEOUT_S) -> None:
    """Load each (path, backend, LCE kernels) and run it once, all in one child process (one import of the
    runtimes); ModelFileError for the first model the child refuses or crashes on.

    The error is the child's own ``error:`` text for a clean refusal, or names the signal for a native crash
    ("the lce runtime crashed (SIGABRT) ...").
    """
    from runtimes.detect import detect_backend

    todo = []
    for path, backend, kernels in specs:
        backend = backend or detect_backend(path)
        key = (sha256_file(path), backend, tuple(kernels), xnnpack)
        if key not in _probed:
            todo.append((str(path), backend, list(kernels), key))
    if not todo:
        return
    cmd = [sys.executable, "-m", "runtimes.isolate", json.dumps([t[:3] for t in todo])]
    if not xnnpack:
        cmd.append("--no-xnnpack")
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"a test load of {', '.join(t[0] for t in todo)} did not finish in {timeout:.0f} s "
                             "(corrupt model?)") from None
    done = sum(1 for ln in p.stdout.splitlines() if ln.startswith("ok "))
    for t in todo[:done]:
        _probed.add(t[3])
    if p.returncode == 0:
        return
    path, backend = todo[min(done, len(todo) - 1)][:2]
    if p.returncode < 0:
        raise ModelFileError(f"{path}: the {backend or 'native'} runtime crashed ({_signal_name(p.returncode)}) "
                             "loading and running this file once in a child process; the file is corrupt or "
                             "uses something the runtime cannot handle")
    errs = [ln[len("error: "):] for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    raise ModelFileError(errs[-1] if errs else f"{path}: a test load failed (exit {p.returncode})")


def probe_load(path: str | Path, backend: str | None = None, kernels: Sequence[str] = ("default",),
               xnnpack: bool = True, timeout: float = PROBE_TIMEOUT_S) -> None:
    """:func:`probe_models` for one model."""
    probe_models([(path, backend, kernels)], xnnpack=xnnpack, timeout=timeout)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser("runtimes.isolate", description="Load models and run each once on a zero input "
                                "(the child side of runtimes.isolate.probe_models); prints 'ok <i>' per model.")
    p.add_argument("specs", help='JSON list of [path, backend or null, [LCE kernels]]')
    p.add_argument("--no-xnnpack", action="store_true")
    args = p.parse_args(argv)
    try:
        import numpy as np

        import runtimes

        for i, (path, backend, kernels) in enumerate(json.loads(args.specs)):
            be = backend or runtimes.detect_backend(path)
            for k in (kernels if be == "lce" else ["-"]):
                opts = {"kernel": k} if be == "lce" else {}
                if be != "onnxruntime":
                    opts["xnnpack"] = not args.no_xnnpack
                r = runtimes.load(path, backend=be, **opts)
                r.run(np.zeros(r.input_shape, np.float32))
            print(f"ok {i}", flush=True)
    except (BurnEdgeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
