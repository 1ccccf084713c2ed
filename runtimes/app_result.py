"""Parse the JSON result file written by the Android demo app's headless benchmark.

The app (``android_demo/``, class ``org.burnedge.demo.logic.ResultWriter``) writes one file per run::

    adb shell am start -n org.burnedge.demo/.BenchActivity --es model both --ei threads 4 --ei runs 50
    # -> /sdcard/Android/data/org.burnedge.demo/files/bench_result.json (written to a temp name, then renamed)

Schema, version 1 (``null`` where a value does not apply)::

    {
      "format": "burn-edge/android-bench",   # constant
      "version": 1,                          # bumped on any incompatible change; this parser reads 1 only
      "status": "ok" | "error",              # "error": the run failed before benchmarking (bad options, no assets)
      "error": null | "message",
      "created_utc": "2026-11-25T14:00:00Z",
      "app": {"package": "org.burnedge.demo", "version_name": "0.1.0",
              "runtime": "lce-lite" | "tensorflow-lite"},   # which TFLite AAR the APK was built with
      "device": {"manufacturer": "Google", "model": "Pixel 6", "abi": "arm64-v8a",
                 "android_release": "14", "sdk_int": 34, "cores": 8},
      "request": {"model": "lce" | "float" | "both", "threads": 4, "runs": 50, "warmup": 10, "xnnpack": true},
      "results": [                           # one per model, LCE first
        {"model": "model_lce.tflite",        # asset file name
         "backend": "lce" | "float",         # binary LCE model, or the float twin on plain TFLite ops
         "kernel": "lce-arm64-optimized" | "lce-unoptimized-<abi>" | "tflite-xnnpack" | "tflite-builtin",
         "threads": 4, "warmup": 10, "runs": 50,
         "median_ms": 12.3, "p10_ms": 11.9, "p90_ms": 13.1, "mean_ms": 12.4, "min_ms": 11.7, "max_ms": 15.0,
         "error": null}                      # or a message, with runs 0 and null timings
      ]
    }

Percentiles use linear interpolation between closest ranks (numpy's default). "lce-unoptimized-x86_64" marks an
x86 emulator: LCE's optimised kernels exist only for arm64-v8a, so those numbers say nothing about a phone.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from common.errors import BurnEdgeError

log = logging.getLogger(__name__)

FORMAT = "burn-edge/android-bench"
VERSION = 1
# The app's backend names -> the names runtimes.bench uses for the same thing on a host.
BACKEND_NAMES = {"lce": "lce", "float": "tflite"}
ROW_KEYS = ("model", "backend", "kernel", "threads", "median_ms", "p10_ms", "p90_ms", "runs", "device")
# Also filled, with the same names as runtimes.latency_table.COLUMNS ("runner" is always "android-app").
EXTRA_KEYS = ("warmup", "mean_ms", "min_ms", "max_ms", "runner")


class AppResultError(BurnEdgeError):
    """The app's result file is missing, not JSON, of another format/version, or reports a failed run."""


def _get(d: dict, key: str, types: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise AppResultError(f"app result: {where} has no {key!r}")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, types):  # JSON true/false is never a count or a latency
        raise AppResultError(f"app result: {where}.{key} has the wrong type ({type(v).__name__}: {v!r})")
    return v


def _ms(entry: dict, key: str, where: str) -> float:
    v = float(_get(entry, key, (int, float), where))
    if not math.isfinite(v) or v < 0:
        raise AppResultError(f"app result: {where}.{key} = {v} is not a latency")
    return v


def device_name(device: dict) -> str:
    """'Google Pixel 6 (arm64-v8a, Android 14)' from the file's "device" object."""
    name = f"{device.get('manufacturer', '?')} {device.get('model', '?')}".strip()
    return f"{name} ({device.get('abi', '?')}, Android {device.get('android_release', '?')})"


def parse_app_result(obj: dict, *, include_failed: bool = False) -> list[dict]:
    """Rows for the benchmark table, one per model the app timed.

    obj: the decoded JSON (see the module docstring). Returns dicts with keys ``ROW_KEYS`` + ``EXTRA_KEYS``
    (backend "lce" or "tflite", as in runtimes.bench; device a display string). Entries the app could not run
    (e.g. the LCE model without the LCE AAR) are logged and skipped; with ``include_failed=True`` they are kept
    with ``None`` timings, and every row gets an extra ``"error"`` key. Raises :class:`AppResultError` for another
    format or version, a malformed file, or a run the app reports as failed.
    """
    if not isinstance(obj, dict):
        raise AppResultError(f"app result must be a JSON object, got {type(obj).__name__}")
    fmt = obj.get("format")
    if fmt != FORMAT:
        raise AppResultError(f"not a burn-edge Android result: format is {fmt!r}, expected {FORMAT!r}")
    version = _get(obj, "version", int, "file")
    if version != VERSION:
        raise AppResultError(f"app result version {version} is not supported (this burn-edge reads {VERSION}); "
                             "install the app from this checkout or update burn-edge")
    status = _get(obj, "status", str, "file")
    if status != "ok":
        raise AppResultError(f"the app reported a failed run: {obj.get('error') or 'no message'}")
    device = device_name(_get(obj, "device", dict, "file"))
    rows = []
    for i, e in enumerate(_get(obj, "results", list, "file")):
        where = f"results[{i}]"
        if not isinstance(e, dict):
            raise AppResultError(f"app result: {where} is not an object")
        backend = _get(e, "backend", str, where)
        if backend not in BACKEND_NAMES:
            raise AppResultError(f"app result: {where}.backend {backend!r} is not one of {sorted(BACKEND_NAMES)}")
        row = {"model": _get(e, "model", str, where), "backend": BACKEND_NAMES[backend],
               "kernel": _get(e, "kernel", str, where), "threads": _get(e, "threads", int, where),
               "device": device, "warmup": _get(e, "warmup", int, where), "runner": "android-app"}
        error = e.get("error")
        if error is not None:
            log.warning("app could not run %s (%s): %s", row["model"], backend, error)
            if not include_failed:
                continue
            row.update(dict.fromkeys(("median_ms", "p10_ms", "p90_ms", "mean_ms", "min_ms", "max_ms")), runs=0)
        else:
            runs = _get(e, "runs", int, where)
            if runs < 1:
                raise AppResultError(f"app result: {where}.runs = {runs}, expected >= 1")
            row.update({k: _ms(e, k, where) for k in ("median_ms", "p10_ms", "p90_ms", "mean_ms", "min_ms",
                                                       "max_ms")}, runs=runs)
        out = {k: row[k] for k in ROW_KEYS + EXTRA_KEYS}
        if include_failed:
            out["error"] = error
        rows.append(out)
    return rows


def load_app_result(path: str | Path, **kw) -> list[dict]:
    """Read a pulled result file and :func:`parse_app_result` it."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AppResultError(f"app result file not found: {p}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AppResultError(f"app result {p} is not valid JSON: {e}") from None
    return parse_app_result(obj, **kw)
