"""End-to-end comparison numbers: relative error, centred cosine, top-1 with its Wilson interval, and the
noise-calibrated statistical test for files that cannot be judged stage by stage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from export.verify.report import OutputDiff, Tolerances
from train.models.reactnet import ReActNetA


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
