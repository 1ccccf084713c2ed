"""The float twin's cost on the aarch64 code path: each binary layer's float ``CONV_2D`` (same shape) through
the aarch64 ``tflite-runtime`` wheel (XNNPACK) under qemu, instruction-counted like the LCE kernels.

For each distinct LceBconv2d shape a one-op float model is made on the host (tf_keras ``Conv2D`` with the same
input size, channels, kernel, stride, dilation and SAME/VALID padding, plus bias; random weights: the cost of
XNNPACK's float conv does not depend on the values), converted with ``tf.lite.TFLiteConverter``, and run by
``float_twin_guest.py`` in an aarch64 Python under ``qemu-aarch64 -cpu cortex-a72`` with the counting plugin.
The counted invoke is the second (steady state) one. ``PYTHONHASHSEED=0`` makes the count deterministic
(with random hashing the Python wrapper's dict lookups vary it by ~0.05 %), and the guest gets the same argv
and environment on every run.

The aarch64 Python is a folder (``--aarch64-python DIR``, else ``$BURN_EDGE_AARCH64_PYTHON``, else
``~/.cache/burn-edge/aarch64-python`` -- under ``$BURN_EDGE_CACHE`` when set) holding Debian's arm64
``python3.11`` unpacked (``usr/bin/python3.11``) and ``site/`` with the aarch64 wheels of numpy and
tflite-runtime unpacked; ``runtimes/arm_lane/aarch64_python.sh [DIR]`` makes it (about 10 s and 25 MB of
downloads; ``.ci/run`` runs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from runtimes.arm_lane.build import cache_base, qemu_command

PYTHON_ENV = "BURN_EDGE_AARCH64_PYTHON"
GUEST = Path(__file__).resolve().parent / "float_twin_guest.py"
MAX_PER_RUN = 15
GUEST_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def default_dir() -> Path:
    return cache_base() / "aarch64-python"


def python_dir(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$BURN_EDGE_AARCH64_PYTHON``, else :func:`default_dir`."""
    p = explicit or os.environ.get(PYTHON_ENV)
    return Path(p).expanduser() if p else default_dir()


def missing(explicit: str | Path | None = None) -> str | None:
    """Why the float twin cannot run, or None."""
    root = python_dir(explicit)
    if not root.is_dir():
        return (f"no aarch64 Python at {root} (make it with runtimes/arm_lane/aarch64_python.sh {root}, "
                f"or give another: --aarch64-python DIR / ${PYTHON_ENV})")
    for rel in ("usr/bin/python3.11", "site/tflite_runtime/interpreter.py", "site/numpy/__init__.py"):
        if not (root / rel).exists():
            return f"{root / rel} missing (make the folder with runtimes/arm_lane/aarch64_python.sh {root})"
    return None


def shape_key(layer) -> tuple:
    n, h, w, _ = layer.input.shape
    return (int(h), int(w), layer.channels_in, layer.channels_out, int(layer.filter.shape[1]),
            int(layer.filter.shape[2]), layer.stride, layer.dilation, layer.padding)


def make_conv_model(key: tuple, path: Path) -> Path:
    """A float one-op model: (1, H, W, Cin) -> Conv2D(Cout, (Fh, Fw), stride, dilation, padding, bias)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    h, w, cin, cout, fh, fw, stride, dilation, padding = key
    keras.utils.set_random_seed(0)
    x = keras.Input((h, w, cin), batch_size=1)
    y = keras.layers.Conv2D(cout, (fh, fw), strides=stride, dilation_rate=dilation, padding=padding.lower())(x)
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(x, y)).convert())
    return path


def _run_guest(models: list[Path], plugin: Path, root: Path, work: Path, timeout: float) -> list[int]:
    """Counted steady-state invoke of each model (at most MAX_PER_RUN), in the order given.

    The guest sees the same argv and environment on every run (models linked into ``work`` under fixed names,
    passed as relative paths; a fixed minimal environment), so its memory layout, and the count, repeat."""
    names = []
    for i, m in enumerate(models):
        link = work / f"model{i}.tflite"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(m).resolve())
        names.append(link.name)
    cnt = work / "guest_count.txt"
    cmd = [*qemu_command(), "-L", str(root), "-E", "PYTHONPATH=/site",
           "-E", "PYTHONHOME=/usr", "-E", "PYTHONHASHSEED=0", "-plugin", f"{plugin},out={cnt}",
           str(root / "usr/bin/python3.11"), str(GUEST), "guest_out.json", *names]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=work, env=GUEST_ENV)
    if r.returncode != 0:
        raise RuntimeError(f"float twin under qemu failed (exit {r.returncode}): {r.stderr.strip()[-400:]}")
    by_phase = {}
    for line in cnt.read_text().splitlines():
        parts = line.split()
        if parts[0] == "phase":
            by_phase[int(parts[1])] = int(parts[3])
    done = json.loads((work / "guest_out.json").read_text())
    return [by_phase[done[n]["phase"]] for n in names]


def count_float_convs(layers, plugin: Path, aarch64_python: str | Path | None = None,
                      timeout: float = 3600) -> dict[tuple, int]:
    """{shape_key: aarch64 instructions of one steady-state float CONV_2D invoke} for the layers' shapes."""
    why = missing(aarch64_python)
    if why:
        raise RuntimeError(why)
    root = python_dir(aarch64_python)
    keys = sorted({shape_key(L) for L in layers}, key=str)
    counts: dict[tuple, int] = {}
    with tempfile.TemporaryDirectory(prefix="burn-edge-float-twin-") as tmp:
        t = Path(tmp)
        models = {k: make_conv_model(k, t / f"conv{i}.tflite") for i, k in enumerate(keys)}
        for start in range(0, len(keys), MAX_PER_RUN):
            chunk = keys[start:start + MAX_PER_RUN]
            counts.update(zip(chunk, _run_guest([models[k] for k in chunk], plugin, root, t, timeout)))
    return counts


def count_model(model: str | Path, plugin: Path, aarch64_python: str | Path | None = None,
                timeout: float = 3600) -> int:
    """aarch64 instructions of one steady-state invoke of a whole float ``.tflite`` (XNNPACK, 1 thread)."""
    why = missing(aarch64_python)
    if why:
        raise RuntimeError(why)
    with tempfile.TemporaryDirectory(prefix="burn-edge-float-twin-") as tmp:
        return _run_guest([Path(model).resolve()], plugin, python_dir(aarch64_python), Path(tmp), timeout)[0]
