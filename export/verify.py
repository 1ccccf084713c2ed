"""Numeric-equivalence harness: PyTorch <-> ONNX <-> LCE, whole model and block by block.

    python -m export.verify ckpt.pt [--onnx m.onnx] [--lce m.tflite] [--images digits|samples|noise|DIR]
                            [--report report.json] [--plot blocks.png]

Whole model: for every runtime, max abs / relative logit error (relative = max|diff| / max|ref|), the mean
cosine similarity of the outputs (features or logits) and top-1 / top-5 agreement with PyTorch (eval mode).

Localisation: every ``feature_info`` stage ("stem", "blocks.0", ...) is exported on its own (``upto``)
by the same exporters, run by each runtime on the same inputs and compared with PyTorch's stage output.
For each block the harness replays the block's two binarisers in PyTorch on the runtime's *input* to
that block and counts sign flips against PyTorch's own pre-sign values. Binary nets amplify rounding:
one pre-sign value that float error moves across 0 changes a bit and everything after it. The first
diverging stage is therefore explained as

* ``near-zero flip``: the flipped pre-sign values all lay within the float-rounding margin
  (``margin = margin_factor * input error + 1e-6 * max|pre-sign|``), or the divergence is confined to a
  few pixels and near-zero candidates exist -- rounding, not a bug;
* ``sign(0) convention``: no flips, but some pre-sign values are exactly 0 (sign(0) must be +1);
* ``real bug``: the block got bit-identical binarised inputs and still computes something else
  (padding geometry, a dropped BN, wrong weights).

The gate passes when, for every runtime, top-1 agreement >= ``min_top1``, cosine >= ``min_cosine``
and either the relative logit error <= ``logit_rtol`` or the first divergence is a near-zero flip.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from common.errors import BurnEdgeError
from runtimes.format import LCE_KERNELS
from train.binary import sign_pm1
from train.models.reactnet import ReActNetA

RUNTIMES = ("onnxruntime",) + tuple(f"lce-{k}" for k in LCE_KERNELS)


@dataclass
class Tolerances:
    """Gate thresholds (all configurable from the CLI)."""

    # A near-zero pre-sign value that float rounding flips changes one image's path through a deep binary
    # net (docs/export.md, LCE converter facts 6), so whole-model bounds leave room for a few such images.
    min_top1: float = 0.95        # fraction of inputs whose top-1 class equals PyTorch's
    min_cosine: float = 0.99      # mean cosine similarity of outputs
    logit_rtol: float = 1e-3      # max |diff| / max |ref| of the final output
    block_rtol: float = 1e-3      # a stage "diverges" above this relative error
    margin_factor: float = 10.0   # near-zero margin = factor * input error + 1e-6 * max|pre-sign|


@dataclass
class OutputDiff:
    runtime: str
    max_abs: float
    max_rel: float
    cosine: float
    top1: float
    top5: float


@dataclass
class BlockDiff:
    runtime: str
    stage: str
    max_abs: float
    max_rel: float
    cosine: float
    diverged: bool
    flips: int = 0            # binariser signs that differ when replayed on the runtime's block input
    flip_rate: float = 0.0
    flips_near_zero: int = 0  # of those, how many lay within the rounding margin
    near_zero: int = 0        # PyTorch's own pre-sign values within the margin (flip candidates)
    exact_zero: int = 0       # PyTorch's own pre-sign values exactly 0
    margin: float = 0.0
    explanation: str = ""


@dataclass
class VerifyReport:
    images: str
    n_inputs: int
    outputs: list[OutputDiff] = field(default_factory=list)
    blocks: list[BlockDiff] = field(default_factory=list)
    first_divergence: dict = field(default_factory=dict)  # runtime -> {"stage", "explanation"}
    failures: list[str] = field(default_factory=list)
    tolerances: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


# ----------------------------------------------------------------------------------- metrics

def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(np.where(den > 0, num / np.maximum(den, 1e-300), 1.0)))


def output_diff(runtime: str, ref: np.ndarray, out: np.ndarray) -> OutputDiff:
    """ref, out: (N, K). top5 = mean overlap of the two top-5 sets (1.0 = same five classes)."""
    diff = np.abs(ref.astype(np.float64) - out)
    scale = float(np.abs(ref).max()) or 1.0
    k = min(5, ref.shape[1])
    t5r, t5o = np.argsort(-ref, 1)[:, :k], np.argsort(-out, 1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(t5r, t5o)])
    return OutputDiff(runtime, float(diff.max()), float(diff.max()) / scale, _cosine(ref, out),
                      float(np.mean(ref.argmax(1) == out.argmax(1))), float(overlap))


# ----------------------------------------------------------------------------------- runtimes

def _ort_runner(proto) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString() if hasattr(proto, "SerializeToString") else proto,
                                so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x.astype(np.float32)})[0]


def _lce_outputs(flatbuffer: bytes, kernel: str, x: np.ndarray) -> list[np.ndarray]:
    """Run the LCE interpreter on an NCHW batch, one NHWC image at a time.

    Returns one array per model output, batched and back in NCHW for spatial (stage) outputs.
    """
    from export import lce

    interp = lce.interpreter(flatbuffer, kernel)
    per_img = [interp.predict(np.ascontiguousarray(img.transpose(1, 2, 0)[None]).astype(np.float32)) for img in x]
    per_img = [o if isinstance(o, list) else [o] for o in per_img]  # a single output comes back bare
    outs = [np.concatenate([o[j] for o in per_img]) for j in range(len(per_img[0]))]
    return [y.transpose(0, 3, 1, 2) if y.ndim == 4 else y for y in outs]


def make_runners(model: ReActNetA, runtimes, output: str, onnx_path: str | None = None,
                 lce_path: str | None = None) -> dict[str, Callable]:
    """One whole-model callable per runtime: (N, 3, S, S) float32 NCHW -> (N, K).

    A given model file (``onnx_path`` / ``lce_path``) is run as is; otherwise the model is exported afresh.
    """
    from export.onnx_graph import build_onnx

    runners, flat = {}, None
    for rt in runtimes:
        if rt == "onnxruntime":
            runners[rt] = _ort_runner(Path(onnx_path).read_bytes() if onnx_path else build_onnx(model, output=output))
        elif rt.startswith("lce-") and rt[4:] in LCE_KERNELS:
            if flat is None:
                from export import lce

                flat = Path(lce_path).read_bytes() if lce_path else \
                    lce.convert(lce.build_keras(model, output=output))
            runners[rt] = lambda x, k=rt[4:], fb=flat: _lce_outputs(fb, k, x)[0]
        else:
            raise BurnEdgeError(f"unknown runtime {rt!r}; choose from {RUNTIMES}")
    return runners


def stage_outputs(model: ReActNetA, runtimes, x: np.ndarray, stages: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """{runtime: {stage: (N, C, H, W) output}} for every stage.

    ONNX: one truncated graph per stage (cheap). LCE: ONE conversion of a multi-output model whose outputs
    are all the stages (``build_keras(taps=...)``), matched to stages by their signature names.
    """
    from export.onnx_graph import build_onnx

    res: dict[str, dict[str, np.ndarray]] = {}
    lce_rts = [rt for rt in runtimes if rt.startswith("lce-")]
    if "onnxruntime" in runtimes:
        res["onnxruntime"] = {st: _ort_runner(build_onnx(model, upto=st))(x) for st in stages}
    if lce_rts:
        from export import lce
        from runtimes.tflite_flatbuffer import output_names

        flat = lce.convert(lce.build_keras(model, taps=stages))
        order = [stages[int(n.rsplit("_", 1)[1])] for n in output_names(flat)]  # "tap_07" -> stages[7]
        for rt in lce_rts:
            res[rt] = dict(zip(order, _lce_outputs(flat, rt[4:], x)))
    return res


# ----------------------------------------------------------------------------------- PyTorch side

@torch.no_grad()
def torch_stages(model: ReActNetA, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """PyTorch (eval) output of every feature_info stage plus "features" and "logits"."""
    model.eval()
    out, h = {}, model.stem(x)
    out["stem"] = h
    for i, blk in enumerate(model.blocks):
        h = blk(h)
        out[f"blocks.{i}"] = h
    out["features"] = torch.flatten(model.pool(h), 1)
    out["logits"] = model.forward_head(out["features"])
    return out


@torch.no_grad()
def _block_presigns(block, x: torch.Tensor) -> list[torch.Tensor]:
    """The two binariser inputs of a Block (x + b1, y + b2), computed in PyTorch from block input x."""
    pre1 = x + block.rsign1.bias
    y = block.rprelu1(block.bn1(block.conv3x3(sign_pm1(pre1))) + block.shortcut(x))
    return [pre1, y + block.rsign2.bias]


@torch.no_grad()
def flip_analysis(block, x_ref: torch.Tensor, x_rt: torch.Tensor, in_err: float, tol: Tolerances) -> dict:
    """Sign flips at the block's binarisers when fed the runtime's block input instead of PyTorch's."""
    flips = flips_nz = near = exact = total = 0
    margin = 0.0
    for p_ref, p_rt in zip(_block_presigns(block, x_ref), _block_presigns(block, x_rt)):
        m = tol.margin_factor * in_err + 1e-6 * float(p_ref.abs().max())
        margin = max(margin, m)
        flipped = sign_pm1(p_ref) != sign_pm1(p_rt)
        n = int(flipped.sum())
        if n and not flips:
            # Judge the FIRST binariser that flips: a near-zero flip there changes a conv output, which then
            # flips values of any size at the next binariser -- consequences, not independent evidence.
            flips_nz = int((flipped & (p_ref.abs() <= m)).sum())
            first = n
        flips += n
        near += int((p_ref.abs() <= m).sum())
        exact += int((p_ref == 0).sum())
        total += p_ref.numel()
    if flips and flips_nz == first:
        flips_nz = flips  # every flip traces back to near-zero values at the first flipping binariser
    return dict(flips=flips, flip_rate=flips / max(total, 1), flips_near_zero=flips_nz, near_zero=near,
                exact_zero=exact, margin=margin)


def _explain(d: BlockDiff, ref: np.ndarray, out: np.ndarray, tol: Tolerances) -> str:
    if d.stage == "stem":
        return "real bug: the float stem differs (no binariser involved)"
    if d.flips and d.flips_near_zero == d.flips:
        return f"near-zero flip: {d.flips} binariser sign(s) flipped, all within the rounding margin {d.margin:.2e}"
    if d.flips:
        return (f"inherited: {d.flips} binariser sign(s) flipped by the previous stage's error, "
                f"{d.flips - d.flips_near_zero} of them outside the rounding margin")
    if d.exact_zero:
        return (f"real bug (sign(0) convention?): binarised inputs identical, {d.exact_zero} pre-sign values "
                f"are exactly 0 -- they must binarise to +1")
    # Where do outputs differ? A rounding flip inside the block touches few pixels.
    bad = np.abs(ref - out).max(axis=1) > tol.block_rtol * (np.abs(ref).max() or 1.0)  # (N, H, W)
    frac = float(bad.mean()) if bad.size else 1.0
    if d.near_zero and frac <= 0.1:
        return (f"near-zero flip (inside the block): {frac:.1%} of pixels differ and {d.near_zero} pre-sign "
                f"values lie within the rounding margin {d.margin:.2e}")
    return (f"real bug: binarised inputs identical but {frac:.1%} of pixels differ "
            "(padding geometry, BN, weights?)")


# ----------------------------------------------------------------------------------- harness

def verify(model: ReActNetA, x: torch.Tensor, *, runtimes=RUNTIMES, output: str = "logits",
           tol: Tolerances | None = None, localise: bool = True, images: str = "",
           onnx_path: str | None = None, lce_path: str | None = None,
           progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Run PyTorch and each runtime on x (N, 3, S, S) and compare (see module docstring)."""
    tol = tol or Tolerances()
    say = progress or (lambda s: None)
    model.eval()
    ref = torch_stages(model, x)
    xn = x.numpy().astype(np.float32)
    rep = VerifyReport(images=images, n_inputs=len(x), tolerances=asdict(tol))
    say("whole model")
    for rt, run in make_runners(model, runtimes, output, onnx_path, lce_path).items():
        rep.outputs.append(output_diff(rt, ref[output].numpy(), run(xn)))
    if localise:
        stage_names = [f["module"] for f in model.feature_info()]
        say("stages")
        outs = stage_outputs(model, [rt for rt in runtimes], xn, stage_names)
        for i, stage in enumerate(stage_names):
            r = ref[stage].numpy()
            for rt in runtimes:
                o = outs[rt][stage]
                diff = np.abs(r.astype(np.float64) - o)
                scale = float(np.abs(r).max()) or 1.0
                d = BlockDiff(rt, stage, float(diff.max()), float(diff.max()) / scale, _cosine(r, o),
                              bool(diff.max() / scale > tol.block_rtol))
                if i > 0:
                    prev = outs[rt][stage_names[i - 1]]
                    prev_err = float(np.abs(ref[stage_names[i - 1]].numpy() - prev).max())
                    fa = flip_analysis(model.blocks[i - 1], ref[stage_names[i - 1]], torch.from_numpy(prev),
                                       prev_err, tol)
                    for k, v in fa.items():
                        setattr(d, k, v)
                if d.diverged and rt not in rep.first_divergence:
                    d.explanation = _explain(d, r, o, tol)
                    rep.first_divergence[rt] = {"stage": stage, "explanation": d.explanation}
                rep.blocks.append(d)
    for o in rep.outputs:
        fd = rep.first_divergence.get(o.runtime, {})
        benign = fd.get("explanation", "").startswith("near-zero flip")
        if o.top1 < tol.min_top1:
            rep.failures.append(f"{o.runtime}: top-1 agreement {o.top1:.1%} < {tol.min_top1:.1%}")
        if o.cosine < tol.min_cosine:
            rep.failures.append(f"{o.runtime}: cosine {o.cosine:.5f} < {tol.min_cosine}")
        if o.max_rel > tol.logit_rtol and not benign:
            where = f" (first divergence {fd['stage']}: {fd['explanation']})" if fd else ""
            rep.failures.append(f"{o.runtime}: relative output error {o.max_rel:.2e} > {tol.logit_rtol:.0e}{where}")
    return rep


# ----------------------------------------------------------------------------------- rendering

def render(rep: VerifyReport) -> str:
    lines = [f"inputs: {rep.n_inputs} ({rep.images})", "",
             f"{'runtime':<15} {'max abs':>10} {'max rel':>10} {'cosine':>9} {'top-1':>7} {'top-5':>7}"]
    for o in rep.outputs:
        lines.append(f"{o.runtime:<15} {o.max_abs:>10.3e} {o.max_rel:>10.3e} {o.cosine:>9.6f} "
                     f"{o.top1:>7.1%} {o.top5:>7.1%}")
    if rep.blocks:
        rts = list(dict.fromkeys(b.runtime for b in rep.blocks))
        lines += ["", "relative error by stage (max|diff| / max|ref|; * = diverged; flips = binariser sign flips)",
                  f"{'stage':<10} " + " ".join(f"{rt:>22}" for rt in rts)]
        for stage in dict.fromkeys(b.stage for b in rep.blocks):
            cells = []
            for rt in rts:
                b = next(b for b in rep.blocks if b.stage == stage and b.runtime == rt)
                cells.append(f"{b.max_rel:.2e}{'*' if b.diverged else ' '} flips {b.flips:<6}")
            lines.append(f"{stage:<10} " + " ".join(f"{c:>22}" for c in cells))
    lines.append("")
    for rt, fd in rep.first_divergence.items():
        lines.append(f"{rt}: first divergence at {fd['stage']}: {fd['explanation']}")
    lines.append("PASS" if rep.passed else "FAIL:\n  " + "\n  ".join(rep.failures))
    return "\n".join(lines)


def plot_blocks(rep: VerifyReport, path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    stages = list(dict.fromkeys(b.stage for b in rep.blocks))
    for rt in dict.fromkeys(b.runtime for b in rep.blocks):
        ys = [max(next(b.max_rel for b in rep.blocks if b.stage == s and b.runtime == rt), 1e-12) for s in stages]
        ax.semilogy(range(len(stages)), ys, marker="o", label=rt)
    ax.axhline(rep.tolerances.get("block_rtol", 1e-3), color="gray", ls="--", label="block_rtol")
    ax.set_xticks(range(len(stages)), stages, rotation=60, fontsize=7)
    ax.set_ylabel("max |diff| / max |ref|")
    ax.set_title("PyTorch vs runtime, by stage")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------- CLI

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.verify", add_help=add_help,
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="burn-edge checkpoint (.pt) of a stage-2 (binary-weight) ReActNet")
    p.add_argument("--onnx", help="exported .onnx to check (default: export afresh from the checkpoint)")
    p.add_argument("--lce", help="exported LCE .tflite to check (default: export afresh)")
    p.add_argument("--images", default="digits",
                   help="inputs: digits (embedded test split), samples (scikit-image photos), noise, or a folder")
    p.add_argument("--limit", type=int, default=64, help="use at most this many images (default 64)")
    p.add_argument("--dataset", default=None,
                   help="data set whose mean/std preprocess the inputs (default: the one the checkpoint records)")
    p.add_argument("--model-output", dest="output", choices=("logits", "features"), default="logits",
                   help="which model output to compare (default logits)")
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES,
                   help="runtimes to check (default: all)")
    p.add_argument("--no-localise", action="store_true", help="skip the per-stage comparison")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--plot", help="write a PNG of the relative error by stage here")
    t = Tolerances()
    p.add_argument("--min-top1", type=float, default=t.min_top1, help=f"gate: top-1 agreement (default {t.min_top1})")
    p.add_argument("--min-cosine", type=float, default=t.min_cosine, help=f"gate: cosine (default {t.min_cosine})")
    p.add_argument("--logit-rtol", type=float, default=t.logit_rtol,
                   help=f"gate: relative output error unless explained as a near-zero flip (default {t.logit_rtol})")
    p.add_argument("--block-rtol", type=float, default=t.block_rtol,
                   help=f"a stage diverges above this relative error (default {t.block_rtol})")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        from export.loading import load_model
        from export.samples import load_inputs

        loaded = load_model(args.checkpoint, dataset=args.dataset)
        model = loaded.model
        if not model.cfg.binary_weights and any(r.startswith("lce") for r in args.runtimes):
            raise BurnEdgeError("this is a stage-1 checkpoint (float weights): LCE needs binary weights; verify "
                                "a stage-2 checkpoint, or only ONNX with --runtimes onnxruntime")
        x, _ = load_inputs(args.images, model.cfg.input_size, loaded.mean, loaded.std, limit=args.limit)
        tol = Tolerances(args.min_top1, args.min_cosine, args.logit_rtol, args.block_rtol)
        from tqdm import tqdm

        bar = tqdm(total=1 if args.no_localise else 2, desc="verify", disable=None)

        def step(msg):
            bar.set_postfix_str(msg)
            bar.update(1)

        rep = verify(model, x, runtimes=tuple(args.runtimes), output=args.output, tol=tol,
                     localise=not args.no_localise, images=args.images, onnx_path=args.onnx, lce_path=args.lce,
                     progress=step)
        bar.close()
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(render(rep))
    if args.report:
        Path(args.report).write_text(json.dumps(rep.to_dict(), indent=2))
    if args.plot and rep.blocks:
        plot_blocks(rep, args.plot)
    return 0 if rep.passed else 1


if __name__ == "__main__":
    sys.exit(main())
