"""The text report and the per-stage PNG."""

from __future__ import annotations

import os

import numpy as np

from export.verify.report import (
    EXACT,
    FLIPS,
    NONFINITE,
    STAGE_EXACT,
    StageVerdict,
    VerifyReport,
    checkpoint_hint,
    verdict_summary,
)


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
            lines.append(f"  {what}: {state}" + (checkpoint_hint(f) if f.other_checkpoint else ""))
    lines += [f"warning: {w}" for w in rep.warnings]
    if rep.seconds:
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in rep.seconds.items()))
    lines.append("PASS" if rep.passed else "FAIL:\n  " + "\n  ".join(rep.failures))
    return "\n".join(lines)


# one colour, marker and line style per runtime; no red, which marks a real bug
STYLES = {"onnxruntime": ("C0", "o", "-"), "lce-default": ("C1", "s", "--"), "lce-indirect": ("C2", "^", "-."),
          "lce-reference": ("C4", "D", ":")}


def plot_blocks(rep: VerifyReport, path: str | os.PathLike) -> None:
    """PNG: teacher-forced relative error by stage (after replaying flips), one line per runtime."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    stages = list(dict.fromkeys(v.stage for v in rep.stages))
    runtimes = list(dict.fromkeys(v.runtime for v in rep.stages))
    for j, rt in enumerate(runtimes):
        vs = [next(v for v in rep.stages if v.stage == s and v.runtime == rt) for s in stages]
        ys = [max(v.replay_rel if np.isfinite(v.replay_rel) else v.max_rel, 1e-12) for v in vs]
        color, marker, ls = STYLES.get(rt, (f"C{5 + j}", "v", "-"))
        xs = [i + (j - (len(runtimes) - 1) / 2) * 0.12 for i in range(len(stages))]  # equal values stay visible
        ax.semilogy(xs, ys, marker=marker, ls=ls, color=color, ms=5, lw=1.2, label=rt, alpha=0.9)
        bad = [i for i, v in enumerate(vs) if v.verdict not in (EXACT, FLIPS)]
        if bad:
            ax.scatter([xs[i] for i in bad], [ys[i] for i in bad], s=150, marker="X", color="red", zorder=5,
                       label=None if "real bug" in ax.get_legend_handles_labels()[1] else "real bug")
    tol = [max(v.tolerance for v in rep.stages if v.stage == s) for s in stages]
    ax.step(range(len(stages)), tol, where="mid", color="gray", ls="--", label="stage tolerance")
    ax.set_xticks(range(len(stages)), stages, rotation=60, fontsize=7)
    ax.set_ylabel("max |diff| / max |ref| (teacher-forced)")
    ax.set_title("PyTorch vs runtime, stage by stage (red X = real bug)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
