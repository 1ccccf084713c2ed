"""The gate: :func:`verify` runs everything for one checkpoint and its files and fills a VerifyReport."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from common.errors import ConfigError
from export.errors import ExportError
from export.loading import nonfinite_tensors
from export.stage_cut import CutError
from export.verify.judge import judge_stage, stage_yardsticks, zero_weight_warning
from export.verify.metrics import Consistency, output_diff, statistical_consistency
from export.verify.report import (
    E2E_ONLY,
    EXACT,
    FLIPS,
    FRESH,
    NOT_JUDGED,
    RUNTIMES,
    STAGE_EXACT,
    STATISTICAL,
    STRUCTURAL,
    GivenFile,
    Tolerances,
    VerifyReport,
    checkpoint_hint,
)
from export.verify.runs import _fresh_file, given_stage_outputs, isolated_outputs, torch_stages, whole_model_outputs
from export.verify.structure import structural_difference
from runtimes.isolate import probe_models
from train.models.reactnet import ReActNetA


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
    given = [(p, be, ks) for p, be, ks in ((onnx_path, "onnxruntime", ["default"]),
                                            (lce_path, "lce", [rt[4:] for rt in runtimes if rt.startswith("lce-")]))
             if p and ks and (be == "lce" or "onnxruntime" in runtimes)]
    if given:  # a file that crashes the native runtime must end as an error, not as a dead verify
        say("test load")
        probe_models(given)
    say("whole model")
    t0 = time.perf_counter()
    whole = whole_model_outputs(model, runtimes, xn, output, onnx_path, lce_path) if end_to_end else {}
    ref = outs[list(outs)[-1]]  # PyTorch's model output
    _check_output_shapes(whole, ref, output, onnx_path, lce_path)
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
        f = GivenFile(kind, str(path), STAGE_EXACT if localise else E2E_ONLY, rts,
                      other_checkpoint=_other_checkpoint(kind, path, source_sha256))
        rep.files.append(f)
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
                _check_output_shapes(whole, ref, output, onnx_path, lce_path)
            _statistical_verdict(rep, f, statistical_consistency(model, x, ref, [whole[rt] for rt in rts], output,
                                                                  tol), accept_statistical)
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
        d = output_diff(rt, ref.numpy(), whole[rt])
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
                    rep.failures.append(f"{rt}: {v.verdict} at {stage}: {v.detail}" + (checkpoint_hint(f) if f else ""))
    for f in rep.files:  # the fresh export as the reference for *which* operator or constant is wrong
        if f.path and f.guarantee == STAGE_EXACT and not f.passed:
            say("locate")
            diff = structural_difference(f.kind, Path(f.path).read_bytes(), _fresh_file(model, f.kind, output))
            f.detail += f"; first difference from a fresh export: {diff or 'none (same operators and constants)'}"
            rep.failures.append(f"{f.path}: {f.detail}")
    _end_to_end_gate(rep, tol)
    return rep


def _statistical_verdict(rep: VerifyReport, f: GivenFile, c: Consistency, accept: bool) -> None:
    """Record what the statistical test gave a file that could be neither cut nor matched structurally."""
    f.detail += f"; {c}"
    if c.consistent:
        f.guarantee, f.passed = STATISTICAL, accept
        if not accept:
            rep.failures.append(f"{f.path}: statistically consistent only ({f.detail}); pass --accept-statistical "
                                "to accept that weaker guarantee")
    else:
        f.guarantee, f.passed = NOT_JUDGED, False
        rep.failures.append(f"{f.path}: cannot be judged stage by stage and is not even statistically consistent "
                            f"with the checkpoint ({f.detail})" + checkpoint_hint(f))


def _check_output_shapes(whole: dict[str, np.ndarray], ref: torch.Tensor, output: str, onnx_path, lce_path) -> None:
    """ExportError when a given file's output has another shape than the checkpoint's ``output`` (e.g. a
    features model checked as logits): nothing can be compared, so it is an input error, not a verdict."""
    for rt, y in whole.items():
        if tuple(y.shape) != tuple(ref.shape):
            path = onnx_path if rt == "onnxruntime" else lce_path
            raise ExportError(f"{path} outputs shape {tuple(y.shape)[1:]} per image, the checkpoint's {output} are "
                              f"{tuple(ref.shape)[1:]}: was it exported with another --model-output (logits / "
                              "features) or from another network? Verify it with the matching --model-output")


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
