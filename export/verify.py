"""Numeric-equivalence harness: PyTorch <-> ONNX <-> LCE, stage by stage (teacher-forced) and end to end.

    python -m export.verify ckpt.pt [--onnx m.onnx] [--lce m.tflite] [--images digits|samples|noise|DIR]
                            [--report report.json] [--plot blocks.png]

Why stage by stage. A deep binary net amplifies rounding: one pre-sign value that float error moves
across 0 flips a bit, and every later block sees different bits. Multiplying a full ReActNet-A's input by
(1 + 1e-6 noise) already changes its logits by percents (docs/export.md), so no whole-model tolerance is
both tight enough to catch a bug and loose enough to pass a correct export.

Teacher forcing. Every stage of ``model.stages()`` ("stem", "blocks.0" ... "pool", "head") is exported on
its own, with the stage input as a graph input (one multi-input model per runtime, built by the same
converters as the real export), and run on *PyTorch's own input to that stage*: upstream drift cannot
leak in. Each Block also outputs the value its second binariser reads (``Block.presign_points()``). The
harness then replays the block in PyTorch (``Block.trace``) with the runtime's binariser inputs, i.e.
with the runtime's bits, and compares. Each stage of each runtime gets one verdict:

Tolerances come from the computation itself. Each stage is also run in float64 PyTorch with float32's bits
(:func:`stage_yardsticks`); PyTorch float32's own relative error against it is the stage's *yardstick*, and
a runtime may differ from PyTorch float32 by ``max(block_rtol, rounding_factor x yardstick)`` (below: "within
tolerance"). A badly conditioned stage (trained BN scales, cancelling biases) thus gets the looser bound its
own float32 arithmetic needs, a well conditioned one keeps the ``block_rtol`` floor.

* ``exact``: no bit differs and the output matches PyTorch within tolerance (relative to max|ref|);
* ``near-zero flips``: some of the block's own binariser bits differ, every one from a pre-sign value the
  runtime computed within rounding (its binariser input matches within tolerance), and with those
  bits PyTorch reproduces the runtime's output within tolerance; at most ``max_flip_rate`` of bits;
* ``real bug``: anything else -- the block computes something else from the same bits (padding
  geometry, a dropped or corrupted BN, sign(0) = 0, wrong weights), whatever happened upstream;
* ``non-finite``: NaN or Inf in the runtime's stage output.

The gate passes iff every stage of every runtime is ``exact`` or ``near-zero flips`` and PyTorch's own
outputs are finite. End to end (the whole model, or the given ``--onnx`` / ``--lce`` file) the harness
reports max abs / relative output error, centred cosine similarity and top-1 agreement with its 95 %
Wilson interval (8 images can only show "at least 68 %"). ``--min-top1``, ``--min-cosine`` and
``--logit-rtol`` add end-to-end conditions to the gate; they are off by default.

The files judged are the given ones. ``--onnx`` / ``--lce`` files are cut at the stage marks the exporters
write (``burn_edge/<stage>`` value / tensor names, :mod:`export.stage_cut`) and *their own* stages get the
verdicts above ("stage-exact" when all match). A file without marks (another tool, an older burn-edge) is
compared with a fresh export operator by operator and constant by constant: if identical, the fresh
export's stage verdicts stand for it ("structurally identical to a fresh export"); if not, the gate fails
naming the first difference -- it never passes a file it could not judge. Without a given file, a fresh
export by the same converters is judged.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from common.errors import BurnEdgeError, ConfigError
from common.files import atomic_save, atomic_write_json, refuse_same_path
from export.errors import ExportError
from export.given import given_stage_outputs, lce_run, nchw, nhwc, ort_session, structural_difference
from export.loading import add_arch_args, arch_from_args, load_model, nonfinite_tensors
from export.stage_cut import CutError
from runtimes.format import LCE_KERNELS
from train.models.layers import BinaryConv2d
from train.models.reactnet import ReActNetA

RUNTIMES = ("onnxruntime",) + tuple(f"lce-{k}" for k in LCE_KERNELS)
EXACT, FLIPS, BUG, NONFINITE = "exact", "near-zero flips", "real bug", "non-finite"


@dataclass
class Tolerances:
    """Gate thresholds (all configurable from the CLI). End-to-end ones are off (None) by default."""

    block_rtol: float = 1e-4      # floor of a stage's tolerance (max|diff|/max|ref|, after replaying bit flips)
    rounding_factor: float = 8.0  # a stage's tolerance: max(block_rtol, rounding_factor * PyTorch float32's own
                                  # error against float64 on that stage, same bits) -- see stage_yardsticks
    max_flip_rate: float = 1e-3   # near-zero bit flips allowed per stage, as a fraction of its binarised values
    min_top1: float | None = None     # end to end: top-1 agreement with PyTorch (fraction)
    min_cosine: float | None = None   # end to end: mean centred cosine similarity of the outputs
    logit_rtol: float | None = None   # end to end: max |diff| / max |ref|

    def validate(self) -> None:
        """ConfigError unless every set threshold is a finite number in its range (a NaN would switch the
        gate off: ``x > nan`` is always false)."""
        ranges = {"block_rtol": (0.0, 1.0), "rounding_factor": (1.0, 1e6), "max_flip_rate": (0.0, 1.0),
                  "min_top1": (0.0, 1.0), "min_cosine": (-1.0, 1.0), "logit_rtol": (0.0, math.inf)}
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            if v is None:
                continue
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be a finite number in [{lo:g}, {hi:g}], got {v!r}")


@dataclass
class OutputDiff:
    """End-to-end comparison of one runtime's whole model with PyTorch."""

    runtime: str
    max_abs: float
    max_rel: float
    cosine: float          # mean centred cosine (each row minus its mean), nan if any value is non-finite
    top1: float            # fraction of images with the same top-1 class
    top1_low: float        # 95 % Wilson interval of top1
    top1_high: float
    top5: float            # mean overlap of the two top-5 sets
    nonfinite: int = 0     # non-finite values in the runtime's output


@dataclass
class StageVerdict:
    """Teacher-forced comparison of one stage of one runtime (see the module docstring)."""

    runtime: str
    stage: str
    verdict: str
    max_rel: float         # runtime vs PyTorch, same stage input
    replay_rel: float      # runtime vs PyTorch replayed with the runtime's bits (== max_rel without flips)
    flips: int = 0         # binariser bits that differ from PyTorch's
    bits: int = 0          # binarised values in the stage
    flip_margin: float = 0.0   # max |pre-sign| / max|pre-sign| over the flipped values (how near zero)
    exact_zero: int = 0    # PyTorch pre-sign values exactly 0 (they must binarise to +1)
    yardstick: float = 0.0  # PyTorch float32's own error on this stage vs float64 (same bits), relative
    tolerance: float = 0.0  # the bound max_rel / replay_rel was held to: max(block_rtol, factor * yardstick)
    detail: str = ""


STAGE_EXACT = "stage-exact"
STRUCTURAL = "structurally identical to a fresh export"
STATISTICAL = "statistically consistent only"
NOT_JUDGED = "not judged"
FRESH = "fresh export (no file given)"
E2E_ONLY = "end to end only (--no-localise)"


@dataclass
class GivenFile:
    """What the gate established about one judged file (or the fresh export standing in for a missing one).

    guarantee: ``stage-exact`` -- the file's own stages, cut at its stage marks, each matched PyTorch;
    ``structurally identical to a fresh export`` -- no marks, but the same operators and bit-identical
    constants as a fresh export, whose stages were judged; ``statistically consistent only`` -- neither, but
    its whole-model outputs differ from PyTorch's no more than PyTorch's own outputs move under 1e-6 input
    noise (fails the gate unless accepted); ``not judged`` -- none of these (the gate fails);
    ``fresh export (no file given)``; ``end to end only (--no-localise)``.
    """

    kind: str                    # "onnx" | "lce"
    path: str | None
    guarantee: str
    runtimes: list[str]
    passed: bool = True
    detail: str = ""
    other_checkpoint: str = ""   # the checkpoint hash the file's metadata names, when not the given one


@dataclass
class VerifyReport:
    images: str
    n_inputs: int
    outputs: list[OutputDiff] = field(default_factory=list)
    stages: list[StageVerdict] = field(default_factory=list)
    files: list[GivenFile] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tolerances: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        """JSON-ready: non-finite numbers become None (JSON has no NaN)."""
        d = _json_safe(asdict(self))
        d["passed"] = self.passed
        d["summary"] = {rt: verdict_summary(self, rt) for rt in dict.fromkeys(v.runtime for v in self.stages)}
        return d


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------- metrics

def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n (n > 0): (low, high)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def centred_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of cos(a_i - mean(a_i), b_i - mean(b_i)); nan if any value is non-finite.

    A row whose two centred vectors are both 0 counts 1; one zero and one not counts 0.
    """
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both0 = (na == 0) & (nb == 0)
    cos = np.where(both0, 1.0, (a * b).sum(1) / np.maximum(na * nb, 1e-300))
    return float(np.mean(cos))


def rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    """max |out - ref| / max |ref| (inf if out is non-finite where ref is finite)."""
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    if not np.isfinite(diff).all():
        return float("inf")
    return float(diff.max(initial=0.0)) / (float(np.abs(ref).max(initial=0.0)) or 1.0)


def output_diff(runtime: str, ref: np.ndarray, out: np.ndarray) -> OutputDiff:
    """ref, out: (N, K). Non-finite outputs give nan metrics and count in ``nonfinite``."""
    n = len(ref)
    bad = int((~np.isfinite(out)).sum())
    diff = np.abs(ref.astype(np.float64) - out)
    max_abs = float(diff.max()) if not bad else float("nan")
    k = min(5, ref.shape[1])
    if bad:
        top1, top5 = float("nan"), float("nan")
        lo, hi = 0.0, 1.0
    else:
        agree = int((ref.argmax(1) == out.argmax(1)).sum())
        top1 = agree / n
        lo, hi = wilson_interval(agree, n)
        t5r, t5o = np.argsort(-ref, 1)[:, :k], np.argsort(-out, 1)[:, :k]
        top5 = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(t5r, t5o)]))
    return OutputDiff(runtime, max_abs, max_abs / (float(np.abs(ref).max()) or 1.0), centred_cosine(ref, out),
                      top1, lo, hi, top5, bad)


# ----------------------------------------------------------------------------------- runtimes

def _ort_session(model_bytes: bytes, what: str):
    return ort_session(model_bytes, what)


def _lce_input_names(flatbuffer: bytes) -> list[str]:
    """The main subgraph's input names in interpreter order (Keras input names, e.g. ``s03_in``)."""
    import tensorflow as tf

    details = tf.lite.Interpreter(model_content=flatbuffer).get_input_details()
    return [d["name"].removeprefix("serving_default_").rsplit(":", 1)[0] for d in details]


def _lce_run(flatbuffer: bytes, kernel: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run an LCE model on NCHW / (N, C) batches (one per model input) image by image; outputs NCHW."""
    return [nchw(o) for o in lce_run(flatbuffer, kernel, [nhwc(a) for a in inputs])]


def whole_model_outputs(model: ReActNetA, runtimes, x: np.ndarray, output: str, onnx_path=None,
                        lce_path=None) -> dict[str, np.ndarray]:
    """{runtime: (N, K) output of the whole model} for the given files (run as is) or fresh ONNX exports.
    Fresh LCE whole models come with the stage model (:func:`isolated_outputs`), one conversion for both."""
    from export.onnx_graph import build_onnx

    res = {}
    if "onnxruntime" in runtimes:
        data = Path(onnx_path).read_bytes() if onnx_path else build_onnx(model, output=output).SerializeToString()
        sess = _ort_session(data, onnx_path or "the fresh ONNX export")
        res["onnxruntime"] = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    lce_rts = [rt for rt in runtimes if rt.startswith("lce-")]
    if lce_rts and lce_path:
        flat = Path(lce_path).read_bytes()
        _check_lce_loads(flat, lce_path)
        for rt in lce_rts:
            res[rt] = _lce_run(flat, rt[4:], [x])[0]
    return res


def _check_lce_loads(flatbuffer: bytes, what: str) -> None:
    """A model file the flatbuffer reader or the TFLite loader rejects ends as one error, not a crash later."""
    import tensorflow as tf

    from runtimes.tflite_verify import verify_tflite

    verify_tflite(flatbuffer, what)  # ModelFileError on a non-TFLite, corrupt or truncated flatbuffer
    try:
        tf.lite.Interpreter(model_content=flatbuffer)
    except Exception as e:
        raise ExportError(f"{what} is not a loadable TFLite model: {str(e).splitlines()[0][:300]}") from None


def isolated_outputs(model: ReActNetA, runtimes, stage_inputs: dict[str, np.ndarray], output: str,
                     lce_whole_input: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Teacher-forced outputs: {runtime: {"<stage>" or "<stage>:<value>": array (NCHW / (N, C))}}.

    stage_inputs: {stage: PyTorch's (N, ...) input to it}. One multi-input model per runtime family
    (``onnx_graph.build_isolated`` / ``lce.build_isolated_keras``), one conversion for all LCE kernels.
    ``lce_whole_input`` (N, 3, S, S): the LCE model also holds the whole network, run on these images;
    its output comes back under ``"whole"``.
    """
    res: dict[str, dict[str, np.ndarray]] = {}
    if "onnxruntime" in runtimes:
        from export.onnx_graph import build_isolated

        sess = _ort_session(build_isolated(model, output).SerializeToString(), "the isolated-stage ONNX model")
        names = [o.name for o in sess.get_outputs()]
        feeds = {f"{st}:in": a for st, a in stage_inputs.items()}
        res["onnxruntime"] = dict(zip(names, sess.run(None, feeds)))
    lce_rts = [rt for rt in runtimes if rt.startswith("lce-")]
    if lce_rts:
        from export import lce
        from runtimes.tflite_flatbuffer import output_names

        whole = lce_whole_input is not None
        km, keys = lce.build_isolated_keras(model, output, whole=whole)
        flat = lce.convert(km)
        order = list(stage_inputs)
        feeds = {f"s{k:02d}_in": stage_inputs[st] for k, st in enumerate(order)} | (
            {"input": lce_whole_input} if whole else {})
        ins = [feeds[n] for n in _lce_input_names(flat)]
        outs = [keys[n] for n in output_names(flat)]
        for rt in lce_rts:
            res[rt] = dict(zip(outs, _lce_run(flat, rt[4:], ins)))
    return res


def chained_outputs(model: ReActNetA, runtimes, x: np.ndarray, stages: list[str],
                    output: str = "logits") -> dict[str, dict[str, np.ndarray]]:
    """{runtime: {stage: output}} of the whole (chained) network, every stage tapped (drift analysis: each
    stage sees the runtime's own upstream values). ONNX: ``build_onnx(taps=...)``; LCE: ``build_keras(taps=...)``
    (spatial stages only), one conversion for all kernels."""
    res: dict[str, dict[str, np.ndarray]] = {}
    if "onnxruntime" in runtimes:
        from export.onnx_graph import build_onnx

        sess = _ort_session(build_onnx(model, output, taps=stages).SerializeToString(), "the chained ONNX model")
        res["onnxruntime"] = dict(zip(stages, sess.run(None, {"input": x})))
    lce_rts = [rt for rt in runtimes if rt.startswith("lce-")]
    if lce_rts:
        from export import lce
        from runtimes.tflite_flatbuffer import output_names

        flat = lce.convert(lce.build_keras(model, output, taps=stages))
        order = [stages[int(n.rsplit("_", 1)[1])] for n in output_names(flat)]  # "tap_07" -> stages[7]
        for rt in lce_rts:
            res[rt] = dict(zip(order, _lce_run(flat, rt[4:], [x])))
    return res


# ----------------------------------------------------------------------------------- verdicts

@torch.no_grad()
def judge_stage(runtime: str, stage: str, module, x_ref: torch.Tensor, y_ref: torch.Tensor,
                got: dict[str, np.ndarray], tol: Tolerances, env_ref: dict | None = None,
                yardstick: dict[str, float] | None = None) -> StageVerdict:
    """Verdict for one teacher-forced stage. got: the runtime's ``"<stage>"`` output and, for a Block, its
    ``"<stage>:<value>"`` binariser inputs (see :func:`isolated_outputs`); env_ref: ``module.trace(x_ref)``
    if already computed (it is shared by all runtimes); yardstick: :func:`stage_yardsticks` (PyTorch
    float32's own relative error per value, ``"out"`` and each binariser input); none = 0 (floor only)."""
    yard = yardstick or {}

    def bound(name: str) -> float:
        return max(tol.block_rtol, tol.rounding_factor * yard.get(name, 0.0))

    out = got[stage]
    ref = y_ref.numpy()
    max_rel = rel_err(out, ref)
    v = StageVerdict(runtime, stage, EXACT, max_rel, max_rel, yardstick=yard.get("out", 0.0),
                     tolerance=bound("out"))
    if not np.isfinite(out).all():
        v.verdict, v.replay_rel = NONFINITE, float("nan")
        v.detail = f"{int((~np.isfinite(out)).sum())} non-finite values in the runtime's output"
        return v
    if not hasattr(module, "presign_points"):
        if max_rel > v.tolerance:
            v.verdict, v.detail = BUG, (f"differs by {max_rel:.2e} of max|ref| (tolerance {v.tolerance:.1e}; no "
                                        "binariser in this stage)")
        return v
    env_ref = env_ref if env_ref is not None else module.trace(x_ref)
    sign_inputs, notes = {}, []
    for path, name in module.presign_points():
        p_ref = env_ref[name]
        p_rt = x_ref if name == "x" else torch.from_numpy(got[f"{stage}:{name}"])
        rsign = module.get_submodule(path)
        if not torch.isfinite(p_rt).all():
            v.verdict, v.detail = NONFINITE, f"non-finite values in {path}'s input {name!r}"
            return v
        err = rel_err(p_rt.numpy(), p_ref.numpy())
        if err > bound(name):
            v.verdict, v.replay_rel = BUG, float("nan")
            v.detail = (f"{path}'s input {name!r} already differs by {err:.2e} of max|ref| (tolerance "
                        f"{bound(name):.1e}; bug before {path})")
            v.detail += _zero_note(v.exact_zero)
            return v
        pre_ref = p_ref + rsign.bias
        flipped = rsign(p_ref) != rsign(p_rt)
        v.flips += int(flipped.sum())
        v.bits += p_ref.numel()
        v.exact_zero += int((pre_ref == 0).sum())
        if flipped.any():
            v.flip_margin = max(v.flip_margin, float(pre_ref[flipped].abs().max() / pre_ref.abs().max()))
            notes.append(f"{int(flipped.sum())} at {path}")
        if name != "x":
            sign_inputs[path] = p_rt
    # Same bits as PyTorch: the replay is PyTorch's own output (no need to recompute it).
    replay = module.trace(x_ref, sign_inputs)[module.dataflow()[-1].out].numpy() if v.flips else ref
    v.replay_rel = rel_err(out, replay)
    if v.replay_rel > v.tolerance:
        v.verdict = BUG
        bad = np.abs(out - replay).reshape(len(out), out.shape[1], -1).max(1) > v.tolerance * np.abs(replay).max()
        v.detail = (f"same bits, output differs by {v.replay_rel:.2e} of max|ref| (tolerance {v.tolerance:.1e}) "
                    f"at {bad.mean():.1%} of pixels"
                    + (_zero_note(v.exact_zero) or " (padding geometry, BN, weights?)"))
    elif v.flips:
        v.verdict = FLIPS
        v.detail = f"{v.flips} bit(s) flipped ({', '.join(notes)}), all within {v.flip_margin:.1e} of max|pre-sign|"
        if v.flips > tol.max_flip_rate * v.bits:
            v.verdict = BUG
            v.detail = f"{v.flips} of {v.bits} bits flipped: more than max_flip_rate {tol.max_flip_rate:g}"
    return v


def _zero_note(exact_zero: int) -> str:
    return f"; {exact_zero} pre-sign values are exactly 0 here (sign(0) must be +1)" if exact_zero else ""


# ----------------------------------------------------------------------------------- harness

@torch.no_grad()
def torch_stages(model: ReActNetA, x: torch.Tensor, output: str = "logits") -> tuple[dict, dict]:
    """PyTorch (eval) ``({stage: input}, {stage: output})`` for every stage of ``model.stages(output)``."""
    model.eval()
    ins, outs, h = {}, {}, x
    for name, y in model.forward_stages(x, output):
        ins[name], outs[name], h = h, y, y
    return ins, outs


@torch.no_grad()
def stage_yardsticks(module, x: torch.Tensor, y32: torch.Tensor, env32: dict | None) -> dict[str, float]:
    """PyTorch float32's own rounding on one stage: {value: max|v32 - v64| / max|v64|} for ``"out"`` and, for a
    Block, each binariser input (``"y"``), where v64 is the same stage run in float64 on the same float32
    input **with float32's bits** (``Block.trace`` with float32's binariser inputs), so a near-zero flip
    between the two precisions cannot inflate the yardstick. A badly conditioned stage (tiny BN variances,
    cancelling biases) gets a large yardstick and every runtime is held to a small factor of it.
    (x + b in float64 of two float32 numbers is exact, so it has the sign of the float32 sum: same bits.)
    """
    m64 = copy.deepcopy(module).double()
    x64 = x.double()
    if env32 is None:
        return {"out": rel_err(y32.numpy(), m64(x64).numpy())}
    forced = {path: env32[name].double() for path, name in module.presign_points() if name != "x"}
    env64 = m64.trace(x64, forced)
    res = {"out": rel_err(y32.numpy(), env64[module.dataflow()[-1].out].numpy())}
    for _, name in module.presign_points():
        if name != "x":
            res[name] = rel_err(env32[name].numpy(), env64[name].numpy())
    return res


def zero_latent_weights(model: ReActNetA) -> dict[str, int]:
    """{binary conv path: number of latent weights exactly 0} (only convs that have some)."""
    res = {}
    for name, m in model.named_modules():
        if isinstance(m, BinaryConv2d) and m.binary_weights:
            n = int((m.weight == 0).sum())
            if n:
                res[name] = n
    return res


def zero_weight_warning(model: ReActNetA) -> str | None:
    """The warning for an official state dict whose latent binary weights hold exact zeros, or None."""
    zeros = zero_latent_weights(model)
    if not zeros:
        return None
    where = ", ".join(f"{k} ({n})" for k, n in list(zeros.items())[:5]) + (" ..." if len(zeros) > 5 else "")
    return (f"{sum(zeros.values())} latent binary weights are exactly 0 in {len(zeros)} conv(s): {where}. "
            "Official ReActNet's torch.sign maps them to 0; burn-edge, ONNX and LCE map them to +alpha, so "
            "outputs differ from the official model's. The export is still self-consistent with burn-edge's "
            "PyTorch model, which is what this check compares.")


def verify(model: ReActNetA, x: torch.Tensor, *, runtimes=RUNTIMES, output: str = "logits",
           tol: Tolerances | None = None, localise: bool = True, images: str = "",
           onnx_path: str | None = None, lce_path: str | None = None, official: bool = False,
           end_to_end: bool = True, source_sha256: str = "", accept_statistical: bool = False,
           progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Run PyTorch and each runtime on x (N, 3, S, S) and compare (see module docstring).

    onnx_path / lce_path: the files to judge (their own stages, cut at their stage marks; see
    :mod:`export.stage_cut`); without one, a fresh export of ``model`` is judged instead.
    localise: the teacher-forced stage verdicts; end_to_end: the whole-model comparison (at least one).
    official: the model comes from an official state dict (warn about exact-zero latent weights).
    source_sha256: the checkpoint's hash, to name a given file whose metadata says another checkpoint.
    accept_statistical: let a given file that can be neither cut nor matched structurally pass on the
    statistical guarantee alone (:func:`statistical_consistency`); by default such a file fails the gate.
    """
    tol = tol or Tolerances()
    tol.validate()
    say = progress or (lambda s: None)
    model.eval()
    if len(x) == 0:
        raise ConfigError("verify needs at least one input image")
    for rt in runtimes:
        if rt not in RUNTIMES:
            raise ConfigError(f"unknown runtime {rt!r}; choose from {RUNTIMES}")
    rep = VerifyReport(images=images, n_inputs=len(x), tolerances=asdict(tol))
    if official and (w := zero_weight_warning(model)):
        rep.warnings.append(w)
    t0 = time.perf_counter()
    ins, outs = torch_stages(model, x, output)
    for stage, y in outs.items():
        if not torch.isfinite(y).all():
            bad = nonfinite_tensors(model)
            rep.failures.append(f"PyTorch's own output is non-finite from stage {stage} on "
                                f"({int((~torch.isfinite(y)).sum())} values); non-finite tensors in the model: "
                                f"{len(bad)} ({', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}); "
                                "nothing to compare against")
            return rep
    rep.seconds["pytorch"] = time.perf_counter() - t0
    xn = x.numpy().astype(np.float32)
    if not (localise or end_to_end):
        raise ConfigError("nothing to compare: enable the stage comparison, the end-to-end one, or both")
    say("whole model")
    t0 = time.perf_counter()
    whole = whole_model_outputs(model, runtimes, xn, output, onnx_path, lce_path) if end_to_end else {}
    rep.seconds["whole model"] = time.perf_counter() - t0
    stage_np = {k: v.numpy() for k, v in ins.items()}
    families = {"onnx": (onnx_path, [rt for rt in runtimes if rt == "onnxruntime"]),
                "lce": (lce_path, [rt for rt in runtimes if rt.startswith("lce-")])}
    got: dict[str, dict[str, np.ndarray]] = {}
    fresh_rts: list[str] = []
    say("stages")
    t0 = time.perf_counter()
    for kind, (path, rts) in families.items():
        if not rts:
            continue
        if path is None:
            fresh_rts += rts
            rep.files.append(GivenFile(kind, None, FRESH, rts))
            continue
        f = GivenFile(kind, str(path), STAGE_EXACT if localise else E2E_ONLY, rts)
        rep.files.append(f)
        f.other_checkpoint = _other_checkpoint(kind, path, source_sha256)
        if not localise:
            continue
        data = Path(path).read_bytes()
        try:
            got |= given_stage_outputs(kind, data, model, output, stage_np, kernels=[rt[4:] for rt in rts])
        except CutError as e:
            f.detail = f"not cut at stage marks: {e}"
            diff = structural_difference(kind, data, _fresh_file(model, kind, output))
            if diff is None:
                f.guarantee = STRUCTURAL
                fresh_rts += rts
                continue
            f.detail += f"; differs from a fresh export of the checkpoint at {diff}"
            if rts[0] not in whole:
                whole |= whole_model_outputs(model, rts, xn, output, onnx_path, lce_path)
            ref = outs[list(outs)[-1]]
            worst = statistical_consistency(model, x, ref, [whole[rt] for rt in rts], output, tol)
            f.detail += f"; {worst}"
            if worst.consistent:
                f.guarantee, f.passed = STATISTICAL, accept_statistical
                if not accept_statistical:
                    rep.failures.append(f"{path}: statistically consistent only ({f.detail}); pass "
                                        "--accept-statistical to accept that weaker guarantee")
            else:
                f.guarantee, f.passed = NOT_JUDGED, False
                rep.failures.append(f"{path}: cannot be judged stage by stage and is not even statistically "
                                    f"consistent with the checkpoint ({f.detail})" + _hint(f))
    lce_fresh = end_to_end and families["lce"][1] and not lce_path
    stage_rts = [rt for rt in runtimes if rt in fresh_rts] if localise else []
    if stage_rts or lce_fresh:
        stage_rts += [rt for rt in families["lce"][1] if lce_fresh and rt not in stage_rts]
        fresh = isolated_outputs(model, stage_rts, stage_np, output, lce_whole_input=xn if lce_fresh else None)
        whole |= {rt: fresh[rt].pop("whole") for rt in families["lce"][1] if lce_fresh}
        got |= {rt: fresh[rt] for rt in fresh if rt in fresh_rts}
    rep.seconds["stages"] = time.perf_counter() - t0
    for rt in runtimes:
        if rt not in whole:
            continue
        d = output_diff(rt, outs[list(outs)[-1]].numpy(), whole[rt])
        rep.outputs.append(d)
        if d.nonfinite:
            rep.failures.append(f"{rt}: {d.nonfinite} non-finite values in the whole model's output")
    if localise:
        modules = dict(model.stages(output))
        for stage in outs:
            m = modules[stage]
            env_ref = m.trace(ins[stage]) if hasattr(m, "presign_points") else None
            yard = stage_yardsticks(m, ins[stage], outs[stage], env_ref)
            for rt in runtimes:
                if rt not in got:
                    continue
                v = judge_stage(rt, stage, m, ins[stage], outs[stage], got[rt], tol, env_ref, yard)
                rep.stages.append(v)
                if v.verdict not in (EXACT, FLIPS):
                    f = next((f for f in rep.files if rt in f.runtimes), None)
                    if f is not None and f.passed:
                        f.passed = False
                        f.detail = f"{v.verdict} at {stage} ({rt})"
                    rep.failures.append(f"{rt}: {v.verdict} at {stage}: {v.detail}" + (_hint(f) if f else ""))
    _end_to_end_gate(rep, tol)
    return rep


NOISE_REL = 1e-6   # relative input noise of the statistical test (the scale of float32 rounding)
NOISE_DRAWS = 8


@dataclass
class Consistency:
    """Whole-model error of a file vs PyTorch's own sensitivity to 1e-6 relative input noise, per image."""

    consistent: bool
    worst_ratio: float     # max over images of error / allowance
    worst_error: float     # that image's max|diff| / max|ref|
    allowance: float       # that image's allowance: max(block_rtol, rounding_factor x PyTorch's noise response)

    def __str__(self) -> str:
        return (f"end to end, worst image: error {self.worst_error:.2e} of max|ref| vs an allowance of "
                f"{self.allowance:.2e} (max of block_rtol and rounding_factor x PyTorch's own response to "
                f"{NOISE_REL:g} input noise, {NOISE_DRAWS} draws)")


@torch.no_grad()
def statistical_consistency(model: ReActNetA, x: torch.Tensor, ref: torch.Tensor, got: list[np.ndarray],
                            output: str, tol: Tolerances, seed: int = 0) -> Consistency:
    """Is each runtime output in ``got`` (N, K) within what float32 rounding could explain?

    PyTorch's own sensitivity is measured: the model is run on ``x * (1 + 1e-6 eps)`` for NOISE_DRAWS draws
    of eps ~ N(0, 1); image i's response r_i is the largest max|y' - y| / max|y| over the draws. A runtime's
    image error e_i = max|got - ref| / max|ref| must satisfy e_i <= max(block_rtol, rounding_factor x r_i)
    for every image. Deep binary nets amplify rounding (bits flip near 0), so r_i is large for a full-size
    model and this test is weak there: it is the fallback for files that cannot be judged stage by stage.
    """
    g = torch.Generator().manual_seed(seed)
    fwd = model.forward_features if output == "features" else model
    refn = ref.double().numpy()
    scale = np.maximum(np.abs(refn).reshape(len(refn), -1).max(1), 1e-12)
    resp = np.zeros(len(refn))
    for _ in range(NOISE_DRAWS):
        y = fwd(x * (1 + NOISE_REL * torch.randn(x.shape, generator=g))).double().numpy()
        resp = np.maximum(resp, np.abs(y - refn).reshape(len(refn), -1).max(1) / scale)
    allow = np.maximum(tol.block_rtol, tol.rounding_factor * resp)
    worst = None
    for out in got:
        err = np.abs(np.asarray(out, np.float64) - refn).reshape(len(refn), -1).max(1) / scale
        err = np.where(np.isfinite(err), err, np.inf)
        i = int(np.argmax(err / allow))
        c = Consistency(bool((err <= allow).all()), float(err[i] / allow[i]), float(err[i]), float(allow[i]))
        if worst is None or c.worst_ratio > worst.worst_ratio:
            worst = c
    return worst


def _other_checkpoint(kind: str, path, source_sha256: str) -> str:
    """The checkpoint hash the given file's metadata names, when it is not ``source_sha256`` (else "")."""
    if not source_sha256:
        return ""
    from runtimes.format import META_SOURCE, sidecar_path

    try:
        if kind == "onnx":
            import onnx

            meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        else:
            import json

            meta = json.loads(Path(sidecar_path(path)).read_text())
        named = str(meta.get(META_SOURCE, "") or "")
    except Exception:  # noqa: BLE001 - a missing or unreadable sidecar is no evidence either way
        return ""
    return named if named and named != source_sha256 else ""


def _hint(f: "GivenFile") -> str:
    if not f.other_checkpoint:
        return ""
    return (f" -- {f.path}'s metadata names another checkpoint (sha256 {f.other_checkpoint[:12]}...): it was "
            "probably exported from a different checkpoint")


def _fresh_file(model: ReActNetA, kind: str, output: str) -> bytes:
    """The file ``export.to_onnx`` / ``export.to_lce`` would write for ``model`` (without metadata)."""
    if kind == "onnx":
        from export.onnx_graph import build_onnx

        return build_onnx(model, output=output).SerializeToString()
    from export import lce

    return lce.convert(lce.build_keras(model, output))


def _end_to_end_gate(rep: VerifyReport, tol: Tolerances) -> None:
    for o in rep.outputs:
        if o.nonfinite:
            continue
        if tol.min_top1 is not None and o.top1 < tol.min_top1:
            rep.failures.append(f"{o.runtime}: top-1 agreement {o.top1:.1%} < {tol.min_top1:.1%} "
                                f"(95% interval {o.top1_low:.0%}-{o.top1_high:.0%})")
        if tol.min_cosine is not None and not o.cosine >= tol.min_cosine:
            rep.failures.append(f"{o.runtime}: centred cosine {o.cosine:.5f} < {tol.min_cosine}")
        if tol.logit_rtol is not None and not o.max_rel <= tol.logit_rtol:
            rep.failures.append(f"{o.runtime}: relative output error {o.max_rel:.2e} > {tol.logit_rtol:.0e}")


def verdict_summary(rep: VerifyReport, runtime: str) -> str:
    """``"15 stages: 13 exact, 2 near-zero flips (31 bits), 0 real bugs"`` for one runtime."""
    vs = [v for v in rep.stages if v.runtime == runtime]
    n = {k: sum(v.verdict == k for v in vs) for k in (EXACT, FLIPS, BUG, NONFINITE)}
    flips = sum(v.flips for v in vs if v.verdict == FLIPS)
    s = f"{len(vs)} stages: {n[EXACT]} exact, {n[FLIPS]} near-zero flips ({flips} bits), {n[BUG]} real bugs"
    return s + (f", {n[NONFINITE]} non-finite" if n[NONFINITE] else "")


# ----------------------------------------------------------------------------------- rendering

def _cell(v: StageVerdict) -> str:
    if v.verdict == EXACT:
        return f"exact {v.max_rel:.0e}"
    if v.verdict == FLIPS:
        return f"flips {v.flips} {v.replay_rel:.0e}"
    if v.verdict == NONFINITE:
        return "NaN/Inf"
    return f"BUG {v.replay_rel if np.isfinite(v.replay_rel) else v.max_rel:.1e}"


def render(rep: VerifyReport) -> str:
    lines = [f"inputs: {rep.n_inputs} ({rep.images})", "", "end to end (whole model; top-1 with its 95% Wilson "
             "interval; cosine of centred outputs)",
             f"{'runtime':<15} {'max abs':>10} {'max rel':>10} {'cosine':>9} {'top-1':>7} {'95% CI':>11} {'top-5':>7}"]
    for o in rep.outputs:
        lines.append(f"{o.runtime:<15} {o.max_abs:>10.3e} {o.max_rel:>10.3e} {o.cosine:>9.6f} {o.top1:>7.1%} "
                     f"{f'{o.top1_low:.0%}-{o.top1_high:.0%}':>11} {o.top5:>7.1%}")
    if rep.stages:
        rts = list(dict.fromkeys(v.runtime for v in rep.stages))
        lines += ["", "teacher-forced stages (each runtime runs every stage on PyTorch's input to it): exact <err> | "
                  "flips <bits> <err after replaying them> | BUG <err>",
                  "fp32 own: PyTorch float32's own error on the stage vs float64 (same bits); each runtime is held "
                  "to max(block_rtol, rounding_factor x fp32 own)",
                  f"{'stage':<10} {'fp32 own':>9} " + " ".join(f"{rt:>17}" for rt in rts)]
        for stage in dict.fromkeys(v.stage for v in rep.stages):
            cells = [next(v for v in rep.stages if v.stage == stage and v.runtime == rt) for rt in rts]
            lines.append(f"{stage:<10} {cells[0].yardstick:>9.0e} " + " ".join(f"{_cell(c):>17}" for c in cells))
        lines.append("")
        lines += [f"{rt}: {verdict_summary(rep, rt)}" for rt in rts]
    if rep.files:
        lines += ["", "judged files (what the gate established about each)"]
        for f in rep.files:
            what = f.path or f"{f.kind} (fresh export)"
            state = f.guarantee if f.passed else (f"WRONG: {f.detail}" if f.guarantee == STAGE_EXACT
                                                  else f"{f.guarantee}: {f.detail}")
            lines.append(f"  {what}: {state}" + (_hint(f) if f.other_checkpoint else ""))
    lines += [f"warning: {w}" for w in rep.warnings]
    if rep.seconds:
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in rep.seconds.items()))
    lines.append("PASS" if rep.passed else "FAIL:\n  " + "\n  ".join(rep.failures))
    return "\n".join(lines)


def plot_blocks(rep: VerifyReport, path: str | os.PathLike) -> None:
    """PNG: teacher-forced relative error by stage (after replaying flips), one line per runtime."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    stages = list(dict.fromkeys(v.stage for v in rep.stages))
    for rt in dict.fromkeys(v.runtime for v in rep.stages):
        vs = [next(v for v in rep.stages if v.stage == s and v.runtime == rt) for s in stages]
        ys = [max(v.replay_rel if np.isfinite(v.replay_rel) else v.max_rel, 1e-12) for v in vs]
        ax.semilogy(range(len(stages)), ys, marker="o", label=rt)
        bad = [i for i, v in enumerate(vs) if v.verdict not in (EXACT, FLIPS)]
        ax.scatter(bad, [ys[i] for i in bad], s=120, facecolors="none", edgecolors="red")
    ax.axhline(rep.tolerances.get("block_rtol", 1e-4), color="gray", ls="--", label="block_rtol")
    ax.set_xticks(range(len(stages)), stages, rotation=60, fontsize=7)
    ax.set_ylabel("max |diff| / max |ref| (teacher-forced)")
    ax.set_title("PyTorch vs runtime, stage by stage (red circle = real bug)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------- CLI

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.verify", add_help=add_help,
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="burn-edge checkpoint (.pt) of a stage-2 (binary-weight) ReActNet")
    p.add_argument("--onnx", help="the .onnx file you ship: its own stages are judged (default: a fresh export of "
                                  "the checkpoint is judged instead)")
    p.add_argument("--lce", help="the LCE .tflite file you ship: its own stages are judged, on every LCE kernel "
                                 "in --runtimes (default: a fresh export)")
    p.add_argument("--images", default="digits",
                   help="inputs: digits (embedded test split), samples (scikit-image photos), noise, or a folder")
    p.add_argument("--limit", type=int, default=64, help="use at most this many images, >= 1 (default 64)")
    p.add_argument("--model-output", dest="output", choices=("logits", "features"), default="logits",
                   help="which model output to compare (default logits)")
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES,
                   help="runtimes to check (default: all)")
    p.add_argument("--no-localise", action="store_true",
                   help="skip the teacher-forced stage comparison (then only --min-top1/--min-cosine/--logit-rtol "
                        "and non-finite outputs can fail the gate)")
    add_arch_args(p)  # --input-size, --dataset (input mean/std) and the official state dict's architecture
    p.add_argument("--accept-statistical", action="store_true",
                   help="let a given file that has no stage marks and differs from a fresh export (another tool's "
                        "file) pass on the weaker 'statistically consistent only' guarantee (default: it fails)")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--plot", help="write a PNG of the teacher-forced relative error by stage here")
    t = Tolerances()
    p.add_argument("--block-rtol", type=float, default=t.block_rtol,
                   help=f"the smallest stage tolerance: a stage matches when max|diff|/max|ref| (after replaying bit "
                        f"flips) <= max(this, --rounding-factor x PyTorch float32's own error) "
                        f"(default {t.block_rtol})")
    p.add_argument("--rounding-factor", type=float, default=t.rounding_factor,
                   help=f"a stage may differ by this many times PyTorch float32's own error on it (measured "
                        f"against float64, same bits), never less than --block-rtol (default {t.rounding_factor:g})")
    p.add_argument("--max-flip-rate", type=float, default=t.max_flip_rate,
                   help=f"near-zero bit flips allowed per stage, fraction of its bits (default {t.max_flip_rate})")
    p.add_argument("--min-top1", type=float, default=None, help="also require this end-to-end top-1 agreement")
    p.add_argument("--min-cosine", type=float, default=None, help="also require this end-to-end centred cosine")
    p.add_argument("--logit-rtol", type=float, default=None,
                   help="also require max|diff|/max|ref| <= this end to end (deep binary nets rarely meet any "
                        "tight bound: see docs/export.md)")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        if args.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {args.limit}")
        tol = Tolerances(block_rtol=args.block_rtol, rounding_factor=args.rounding_factor,
                         max_flip_rate=args.max_flip_rate, min_top1=args.min_top1, min_cosine=args.min_cosine,
                         logit_rtol=args.logit_rtol)
        tol.validate()  # before the checkpoint and images are loaded (verify() checks again for API callers)
        for out in (args.report, args.plot):
            if out:
                refuse_same_path(out, args.checkpoint, args.onnx, args.lce, what="--report/--plot")
        for flag, path in (("--onnx", args.onnx), ("--lce", args.lce)):
            if path and not Path(path).is_file():
                raise ExportError(f"{flag} {path}: no such file")
        from export.samples import load_inputs

        loaded = load_model(args.checkpoint, arch=arch_from_args(args), input_size=args.input_size,
                            dataset=args.dataset)
        model = loaded.model
        if not model.cfg.binary_weights and any(r.startswith("lce") for r in args.runtimes):
            raise ExportError("this is a stage-1 checkpoint (float weights): LCE needs binary weights; verify "
                              "a stage-2 checkpoint, or only ONNX with --runtimes onnxruntime")
        x, _ = load_inputs(args.images, model.cfg.input_size, loaded.mean, loaded.std, limit=args.limit)
        from tqdm import tqdm

        bar = tqdm(total=1 if args.no_localise else 2, desc="verify", disable=None)

        def step(msg):
            bar.set_postfix_str(msg)
            bar.update(1)

        rep = verify(model, x, runtimes=tuple(args.runtimes), output=args.output, tol=tol,
                     localise=not args.no_localise, images=args.images, onnx_path=args.onnx, lce_path=args.lce,
                     official=loaded.official, source_sha256=loaded.sha256,
                     accept_statistical=args.accept_statistical, progress=step)
        bar.close()
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(render(rep))
    if args.report:
        atomic_write_json(args.report, rep.to_dict())
    if args.plot and rep.stages:
        atomic_save(args.plot, lambda tmp: plot_blocks(rep, tmp))
    return 0 if rep.passed else 1


if __name__ == "__main__":
    sys.exit(main())
