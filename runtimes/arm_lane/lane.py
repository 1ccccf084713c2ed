"""Run LceBconv2d layers through LCE's aarch64 kernels under qemu, compare with the x86 interpreter, count.

For one :class:`~runtimes.arm_lane.layers.Layer` (:func:`run_layer`) the driver runs, each time in a fresh
``qemu-aarch64 -cpu cortex-a72`` with the counting plugin:

- ``bitpack``: LCE's LceQuantize bitpacking of the layer's float input -> must equal, bit for bit, the
  bitpacked tensor the x86 interpreter fed the layer;
- ``acc-bgemm`` / ``acc-indirect``: the XOR-popcount accumulators of both kernel paths -> must equal, exactly,
  an independent numpy XOR-popcount of the x86 interpreter's input and the packed weights;
- ``bgemm`` / ``indirect``: the real output (the default ruy-based BGEMM path ``lce_benchmark_model`` uses,
  and the indirect BGEMM) -> float within ``float_ulp`` units in the last place of the x86 interpreter's
  output, int8 within 1, bitpacked exact. The instructions of the kernel call are counted (phase 1).

Float tolerance: on aarch64 the output transform ``float(2*acc) * m + b`` may be compiled to one fused
multiply-add (one rounding), on x86 it is a multiply then an add (two roundings), and the same-zero padding
correction adds one more float operation at border pixels. So results can differ by a couple of roundings.
A rounding error is relative to the size of the *terms*, not of the result: where ``2*acc*m`` and ``b``
nearly cancel, one ulp of the terms is many ulps of the result. The verdict therefore measures the error in
ulps of ``max(|result|, |2*acc*m|, |b|)`` (``ulps_of_terms``); plain result-ulps are reported too.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtimes.arm_lane.build import qemu_command
from runtimes.arm_lane.layers import Layer, write_layer_file

FLOAT_ULP = 2  # default tolerance, in ulps of the terms (module docstring)
INT8_TOL = 1
PHASE_KERNEL, PHASE_IM2COL, PHASE_BITPACK = 1, 2, 3
DRIVER_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.int64)


@dataclass
class Run:
    """One driver run: the output array, the kernel it reports, instructions per counting phase."""

    mode: str
    output: np.ndarray
    kernel: str
    insns: dict[int, int]


@dataclass
class LayerResult:
    layer: Layer
    checks: dict[str, dict] = field(default_factory=dict)  # name -> {"ok", "detail", ...}
    runs: dict[str, Run] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks.values())


def run_driver(driver: Path, plugin: Path | None, mode: str, layer_file: Path, work: Path,
               qemu: bool = True, timeout: float = 3600) -> Run:
    """One driver invocation (under qemu with the plugin when ``qemu``); raises RuntimeError on failure."""
    out, counts = work / f"{layer_file.stem}.{mode}.out", work / f"{layer_file.stem}.{mode}.count"
    cmd = [str(driver), mode, str(layer_file), str(out)]
    if qemu:
        cmd = [*qemu_command(), *(["-plugin", f"{plugin},out={counts}"] if plugin else []), *cmd]
    # a fixed environment: qemu-user hands the host's environment to the guest, and its size moves the stack
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=DRIVER_ENV)
    if r.returncode != 0:
        raise RuntimeError(f"driver {mode} on {layer_file.name} failed (exit {r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[-500:]}")
    m = re.search(r"kernel=(.*)", r.stdout)
    insns = {}
    if qemu and plugin and counts.is_file():
        for line in counts.read_text().splitlines():
            p = re.match(r"phase (\d+) insns (\d+)", line)
            if p:
                insns[int(p.group(1))] = int(p.group(2))
    return Run(mode, np.fromfile(out, np.uint8), m.group(1).strip() if m else "?", insns)


def reference_accumulators(layer: Layer) -> np.ndarray:
    """XOR-popcount accumulators [N, Ho, Wo, Cout] from the bitpacked input and weights, in numpy: the
    count of differing bits over the receptive field, outside-the-input positions being 0 words (+1 values),
    with TFLite's SAME geometry (extra padding row/column at the bottom/right)."""
    x, w = layer.input.astype(np.int32), layer.filter.astype(np.int32)
    n, h, wd, cp = x.shape
    cout, fh, fw, cpg = w.shape
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    ho, wo = layer.out_hw
    pads = []
    for size, out, s, d, f in ((h, ho, sh, dh, fh), (wd, wo, sw, dw, fw)):
        total = max((out - 1) * s + (f - 1) * d + 1 - size, 0) if layer.padding == "SAME" else 0
        pads.append((total // 2, total - total // 2))
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    groups = cp // cpg
    per_group = cout // groups
    acc = np.zeros((n, ho, wo, cout), np.int64)
    for fy in range(fh):
        for fx in range(fw):
            patch = xp[:, fy * dh: fy * dh + (ho - 1) * sh + 1: sh, fx * dw: fx * dw + (wo - 1) * sw + 1: sw, :]
            for gi in range(groups):
                pg = patch[..., gi * cpg:(gi + 1) * cpg].reshape(-1, 1, cpg)
                wg = w[gi * per_group:(gi + 1) * per_group, fy, fx, :].reshape(1, per_group, cpg)
                step = max(1, 4_000_000 // max(1, per_group * cpg))
                for i in range(0, pg.shape[0], step):
                    xor = np.bitwise_xor(pg[i:i + step], wg).view(np.uint8)
                    bits = _POPCOUNT8[xor].reshape(xor.shape[0], per_group, -1).sum(-1)
                    acc.reshape(-1, cout)[i:i + step, gi * per_group:(gi + 1) * per_group] += bits
    return acc


def _ordered(a: np.ndarray) -> np.ndarray:
    """float32 -> int64 whose difference counts representable floats between two values."""
    i = a.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def float_compare(got: np.ndarray, ref: np.ndarray, acc: np.ndarray, layer: Layer, tol_ulp: float) -> dict:
    """Max ulp distance (of the result, and of the terms; see module docstring), max |diff|, share differing."""
    got, ref = got.astype(np.float32).reshape(ref.shape), ref.astype(np.float32)
    ulp_result = np.abs(_ordered(got) - _ordered(ref))
    mult = np.asarray(layer.multiplier, np.float64)
    bias = np.asarray(layer.bias, np.float64)
    k = layer.filter.shape[1] * layer.filter.shape[2] * (layer.channels_in // layer.groups)
    # terms of LCE's transform: float(2*acc) * (-m) and (b + K*m) (bconv2d.cc OneTimeSetup)
    term = np.maximum(np.abs(2.0 * acc * mult), np.abs(bias + k * mult))
    scale = np.maximum(np.maximum(term, np.abs(ref.astype(np.float64))), np.finfo(np.float32).tiny)
    ulp_terms = np.abs(got.astype(np.float64) - ref) / np.spacing(scale.astype(np.float32)).astype(np.float64)
    both_nan = np.isnan(got) & np.isnan(ref)
    ulp_terms = np.where(both_nan, 0, ulp_terms)
    worst = float(np.nanmax(ulp_terms)) if ulp_terms.size else 0.0
    return {"ok": bool(worst <= tol_ulp and not np.isnan(ulp_terms).any()),
            "max_ulp_terms": worst, "max_ulp_result": int(ulp_result.max()) if ulp_result.size else 0,
            "max_abs": float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0,
            "differing": float((got != ref).mean()) if ref.size else 0.0,
            "detail": f"max {worst:.2f} ulp of terms ({int(ulp_result.max())} ulp of result), "
                      f"{100 * float((got != ref).mean()):.1f}% differ, max |d| {float(np.abs(got - ref).max()):.3g}"}


def compare_output(run: Run, layer: Layer, acc: np.ndarray, tol_ulp: float) -> dict:
    ref = layer.output
    if layer.out_type == "float32":
        return float_compare(run.output.view(np.float32), ref, acc, layer, tol_ulp)
    if layer.out_type == "int8":
        d = np.abs(run.output.view(np.int8).astype(np.int32).reshape(ref.shape) - ref.astype(np.int32))
        m = int(d.max()) if d.size else 0
        return {"ok": m <= INT8_TOL, "max_abs": m, "detail": f"int8 max |d| {m} ({int((d > 0).sum())} elements)"}
    got = run.output.view(np.int32).reshape(ref.shape)
    bad = int((got != ref).sum())
    return {"ok": bad == 0, "detail": "bitpacked output identical" if not bad else f"{bad} words differ"}


def run_layer(layer: Layer, driver: Path, plugin: Path | None, work: Path, *, qemu: bool = True,
              tol_ulp: float = FLOAT_ULP, paths: tuple[str, ...] = ("bgemm", "indirect")) -> LayerResult:
    """All checks and counted runs for one layer (module docstring)."""
    res = LayerResult(layer)
    f = write_layer_file(layer, work / f"{layer.name}.layer")

    def go(mode):
        r = run_driver(driver, plugin, mode, f, work, qemu=qemu)
        res.runs[mode] = r
        return r

    if layer.float_input is not None:
        r = go("bitpack")
        got = r.output.view(np.int32).reshape(layer.input.shape)
        bad = int((got != layer.input).sum())
        res.checks["bitpack"] = {"ok": bad == 0, "detail": "identical" if not bad else f"{bad} words differ"}
    ref_acc = reference_accumulators(layer)
    for path in paths:
        if path == "bgemm" and layer.groups > 1:
            res.checks["acc-bgemm"] = {"ok": True, "detail": "n/a: grouped conv (BGEMM path rejects it)"}
            continue
        r = go(f"acc-{path}")
        got = r.output.view(np.float32).reshape(ref_acc.shape)
        bad = int((got != ref_acc).sum())
        res.checks[f"acc-{path}"] = {"ok": bad == 0,
                                     "detail": "identical" if not bad else f"{bad} of {got.size} differ"}
        r = go(path)
        res.checks[path] = compare_output(r, layer, ref_acc, tol_ulp)
    return res


def run_layers(layers: list[Layer], driver: Path, plugin: Path | None, *, qemu: bool = True,
               tol_ulp: float = FLOAT_ULP, work: Path | None = None, progress=None) -> list[LayerResult]:
    out = []
    with tempfile.TemporaryDirectory(prefix="burn-edge-arm-") as tmp:
        w = Path(work or tmp)
        w.mkdir(parents=True, exist_ok=True)
        for i, layer in enumerate(layers):
            out.append(run_layer(layer, driver, plugin, w, qemu=qemu, tol_ulp=tol_ulp))
            if progress:
                progress(i + 1, len(layers), out[-1])
    return out
