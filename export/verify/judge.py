"""Judging one teacher-forced stage: exact / near-zero flips / real bug / non-finite, against a tolerance taken
from PyTorch float32's own error on the stage (the yardstick)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from export.verify.metrics import rel_err
from export.verify.report import BUG, EXACT, FLIPS, NONFINITE, StageVerdict, Tolerances
from train.models.layers import BinaryConv2d
from train.models.reactnet import ReActNetA


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
