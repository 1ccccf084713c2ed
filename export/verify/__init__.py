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


Modules: :mod:`~export.verify.report` (thresholds, verdicts, the report), :mod:`~export.verify.metrics`
(end-to-end numbers, the statistical test), :mod:`~export.verify.runs` (PyTorch and the runtimes, given
files cut at their stage marks), :mod:`~export.verify.structure` (files without marks vs a fresh export),
:mod:`~export.verify.judge` (one stage's verdict), :mod:`~export.verify.gate` (:func:`verify`),
:mod:`~export.verify.rendering` (text and PNG), :mod:`~export.verify.cli` (the command line).
"""

import importlib

# Everything is imported on first use (PEP 562), so ``python -m export.verify --help`` stays fast: the
# command line needs neither torch nor the runtimes to print its help.
_HOME = {
    "BUG": "report",
    "Consistency": "metrics",
    "E2E_ONLY": "report",
    "EXACT": "report",
    "FLIPS": "report",
    "FRESH": "report",
    "GivenFile": "report",
    "NONFINITE": "report",
    "NOT_JUDGED": "report",
    "OutputDiff": "report",
    "RUNTIMES": "report",
    "STAGE_EXACT": "report",
    "STATISTICAL": "report",
    "STRUCTURAL": "report",
    "StageVerdict": "report",
    "Tolerances": "report",
    "VerifyReport": "report",
    "centred_cosine": "metrics",
    "chained_outputs": "runs",
    "get_args_parser": "cli",
    "given_stage_outputs": "runs",
    "isolated_outputs": "runs",
    "judge_stage": "judge",
    "main": "cli",
    "output_diff": "metrics",
    "plot_blocks": "rendering",
    "rel_err": "metrics",
    "render": "rendering",
    "stage_yardsticks": "judge",
    "statistical_consistency": "metrics",
    "structural_difference": "structure",
    "torch_stages": "runs",
    "verdict_summary": "report",
    "verify": "gate",
    "whole_model_outputs": "runs",
    "wilson_interval": "metrics",
    "zero_latent_weights": "judge",
    "zero_weight_warning": "judge",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'export.verify' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"export.verify.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME))
