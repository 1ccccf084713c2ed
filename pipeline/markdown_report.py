"""The pipeline's report folder: one markdown page plus PNGs, built only from the phases' output files.

``write_report(paths, timings) -> report/README.md``; every section is skipped when its input file is
missing, so the report can be regenerated after any subset of phases. The ARM section (from arm.json) follows
the host latency table: the lane's verdicts and instruction counts, or why each layer was not run.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from common.files import atomic_copy, atomic_save, atomic_write_text


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_metrics(run_dir: Path) -> list[dict]:
    f = run_dir / "metrics.csv"
    if not f.is_file():
        return []
    with open(f, newline="") as fh:
        return list(csv.DictReader(fh))


def _epoch_axis(rows: list[dict], offset: float = 0.0) -> list[float]:
    """Fractional epochs of logged rows (the last logged step ends the run's last epoch), shifted by ``offset``."""
    steps = [float(r["step"]) for r in rows]
    epochs = max(int(float(r.get("epoch") or 0)) for r in rows) + 1
    per_epoch = max(steps[-1], 1.0) / epochs
    return [offset + s / per_epoch for s in steps]


def _column(rows: list[dict], key: str) -> list[float] | None:
    vals = [r.get(key) for r in rows]
    return None if any(v in (None, "") for v in vals) else [float(v) for v in vals]


def training_series(runs: dict[str, Path]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """What the training plot draws, per panel: ``{"teacher": {"teacher": (epochs, loss)}, "burn_loss": {"stage 1":
    ..., "stage 2": ...}, "burn_kl": {...}}``. Stage 2's epochs continue after stage 1's last (one epoch axis).
    ``runs``: {"teacher" | "stage1" | "stage2": run folder with a metrics.csv}; missing runs are left out."""
    data = {name: [r for r in _read_metrics(d) if r.get("loss") not in (None, "")] for name, d in runs.items()}
    out: dict[str, dict] = {"teacher": {}, "burn_loss": {}, "burn_kl": {}}
    if data.get("teacher"):
        out["teacher"]["teacher"] = (_epoch_axis(data["teacher"]), _column(data["teacher"], "loss"))
    offset = 0.0
    for name in ("stage1", "stage2"):
        rows = data.get(name)
        if not rows:
            continue
        x, label = _epoch_axis(rows, offset), f"stage {name[-1]}"
        out["burn_loss"][label] = (x, _column(rows, "loss"))
        kl = _column(rows, "kl")
        if kl is not None:
            out["burn_kl"][label] = (x, kl)
        offset = x[-1]
    return out


def plot_training_curves(runs: dict[str, Path], path: Path) -> bool:
    """Three panels, each on its own axis: the teacher's MoCo loss; BURN's loss with stage 2 drawn after stage 1 on
    one epoch axis; BURN's KL to the classifier g (log scale: it collapsing towards 0 means the target stopped
    carrying information). False (nothing written) when no run has a metrics.csv."""
    series = training_series(runs)
    if not any(series.values()):
        return False
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    fig, (t_ax, b_ax, k_ax) = plt.subplots(1, 3, figsize=(12, 3.6))
    colors = {"stage 1": "C0", "stage 2": "C1"}
    for x, y in series["teacher"].values():
        t_ax.plot(x, y, color="C7")
    t_ax.set_title("teacher h (MoCo-v2): InfoNCE loss", fontsize=9)
    for ax, key in ((b_ax, "burn_loss"), (k_ax, "burn_kl")):
        for label, (x, y) in series[key].items():
            if key == "burn_kl":
                ax.semilogy(x, [max(v, 1e-8) for v in y], color=colors[label], label=label)
            else:
                ax.plot(x, y, color=colors[label], label=label)
        if "stage 1" in series[key] and "stage 2" in series[key]:  # where stage 2 starts
            ax.axvline(series[key]["stage 1"][0][-1], color="gray", ls=":", lw=1)
    for ax, empty in ((t_ax, "no teacher run\n(--teacher-checkpoint)"), (b_ax, "no BURN run"), (k_ax, "no KL logged")):
        if not ax.lines:
            ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
        elif ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
    b_ax.set_title("BURN: loss (1-λ) KL + λ FS", fontsize=9)
    k_ax.set_title("BURN: KL to the classifier g (log)", fontsize=9)
    for set_fmt in (k_ax.yaxis.set_major_formatter, k_ax.yaxis.set_minor_formatter):
        set_fmt(FuncFormatter(lambda v, _: f"{v:.3g}"))
    t_ax.set_ylabel("training loss")
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return True


def plot_accuracy(ev: dict, path: Path) -> None:
    plt = _plt()
    names = [n for n in ("random-init", "burn-stage1", "burn-stage2") if n in ev]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    w = 0.38
    for j, (proto, label) in enumerate((("linear", "linear probe"), ("knn", "weighted kNN"))):
        vals = [100 * ev[n][proto]["top1"] for n in names]
        bars = ax.bar([i + (j - 0.5) * w for i in range(len(names))], vals, w, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("Binary ReActNet-A features")
    ax.legend()
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def arm_markdown(report: dict) -> list[str]:
    """The ARM section from one :func:`runtimes.arm.arm_report` (the pipeline's arm.json): the per-layer verdict
    table and the aarch64 instruction-count table (default and indirect BGEMM, every portable fallback flagged,
    the float twin's per-layer count or why it is missing), or, when the lane did not run, its reasons and the
    source-read kernel choice with every layer marked not run."""
    from runtimes.arm import FALLBACK_FLAG, cost_table, format_whole_model, not_run_reason, verdict_table
    from runtimes.arm_lane.build import QEMU_CPU

    name = Path(report["model"]).name
    md = ["## ARM (aarch64) without a device: LCE's own kernels under qemu", ""]
    if not_run_reason(report):
        lane = report["lane"]
        why = lane.get("unavailable") or [f"the lane failed: {lane['error']}"]
        md += [f"The lane did **not run** for `{name}`:", ""] + [f"- {w}" for w in why] + [""]
        if report["dispatch"]:
            md += ["Kernel choice read from LCE v0.16.0's source (nothing run):", ""]
            md += _md_table(["op", "input", "filter", "stride", "default BGEMM", "indirect BGEMM", "aarch64 run"],
                            [[r["op"], r["input"], r["filter"], r["stride"], r["default"],
                              r["indirect"] + (f" **PORTABLE FALLBACK** ({r['indirect_fallback_reason']})"
                                               if r["indirect"] == "portable" else ""),
                              "not run (reasons above)"] for r in report["dispatch"]])
        return md + [""]
    lane = report["lane"]
    v = verdict_table(lane["layers"])
    md += [f"Every `LceBconv2d` of `{name}` on LCE v0.16.0's aarch64 kernels under `qemu-aarch64 -cpu {QEMU_CPU}`, "
           f"with the input the x86 LCE interpreter gives it for the image `{report['image']}` "
           f"(`python -m runtimes.arm`; lane took {lane['seconds']} s).", "",
           f"**{v['summary']}**", ""]
    md += _md_table(v["header"], v["rows"])
    md += [""] + [f"- FAIL: {f}" for f in v["failures"]]
    c = cost_table(lane["layers"], lane["float_twin"])
    def kernel(cell: str) -> str:  # `Kernel8x4x1Aarch64<float, ...>` in code spans: no HTML tags
        name, fallback = cell.split(FALLBACK_FLAG)[0].strip(), FALLBACK_FLAG in cell
        return f"`{name}`" + (" **PORTABLE FALLBACK**" if fallback else "") if name != "-" else name

    md += ["", "aarch64 instructions per layer (kernel call only):", ""]
    md += _md_table(c["header"], [[kernel(x) if j in (2, 4) else x for j, x in enumerate(r)] for r in c["rows"]]
                    + [[f"**{x}**" if x else "" for x in c["total"]]])
    md += [""] + [f"{n}  " for n in c["notes"]]
    if c["fallbacks"]:
        md += ["", f"**{len(c['fallbacks'])} PORTABLE FALLBACK(S)**: LCE's NEON/assembly kernel is not used for:"]
        md += [f"- {f}" for f in c["fallbacks"]]
    else:
        md += ["", "Every layer ran LCE's NEON/assembly kernels on both paths."]
    if "whole_model" in lane:
        md += ["", format_whole_model(lane["whole_model"])]
    return md + [""]


def write_report(paths, timings: dict) -> Path:
    """Write ``paths.report/README.md`` (+ PNGs) from whatever phase outputs exist."""
    rep = Path(paths.report)
    rep.mkdir(parents=True, exist_ok=True)
    md = ["# burn-edge pipeline report", ""]
    if timings:
        md += ["## Phases", ""] + _md_table(["phase", "seconds"], [[k, v] for k, v in timings.items()])
        md += [f"| **total** | **{sum(timings.values()):.0f}** |", ""]
    runs = {n: Path(getattr(paths, n)).parent for n in ("teacher", "stage1", "stage2")}
    if plot_training_curves(runs, rep / "training_curves.png"):
        md += ["## Training", "", "![training curves](training_curves.png)", ""]
    if Path(paths.eval).is_file():
        ev = json.loads(Path(paths.eval).read_text())
        md += ["## Accuracy (linear probe / weighted kNN on frozen binary features, test split)", ""]
        md += _md_table(["network", "linear top-1", "kNN top-1"],
                        [[n, f"{ev[n]['linear']['top1']:.1%}", f"{ev[n]['knn']['top1']:.1%}"]
                         for n in ("burn-stage2", "burn-stage1", "random-init") if n in ev])
        if "classifier" in ev:
            md += ["", f"Deployed classifier (stage-2 net + folded linear probe): "
                       f"**{ev['classifier']['test_top1']:.1%}** test top-1."]
        plot_accuracy(ev, rep / "accuracy.png")
        md += ["", "![accuracy](accuracy.png)", ""]
    exp = Path(paths.export)
    if exp.is_dir():
        files = [p for p in (paths.onnx, paths.lce, paths.float) if Path(p).is_file()]
        md += ["## Export", ""] + _md_table(["file", "bytes"], [[Path(p).name, f"{Path(p).stat().st_size:,}"]
                                                               for p in files])
        audits = sorted(exp.glob("*.audit.json"))
        for a in audits:
            aud = json.loads(a.read_text())
            ops = aud.get("op_counts") or aud.get("ops") or {}
            if isinstance(ops, dict) and ops:
                md += ["", f"`{a.name}` op counts: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))]
        md += [""]
    if Path(paths.verify).is_file():
        v = json.loads(Path(paths.verify).read_text())
        md += ["## Equivalence (PyTorch vs runtimes)", "", f"Gate: **{'PASS' if v['passed'] else 'FAIL'}** "
               f"on {v['n_inputs']} {v['images']} images.", ""]
        md += _md_table(["runtime", "max abs", "max rel", "cosine", "top-1 agree", "top-5 agree"],
                        [[o["runtime"], f"{o['max_abs']:.2e}", f"{o['max_rel']:.2e}", f"{o['cosine']:.6f}",
                          f"{o['top1']:.1%}", f"{o['top5']:.1%}"] for o in v["outputs"]])
        md += [""] + [f"- {rt} (teacher-forced stages): {line}" for rt, line in v.get("summary", {}).items()]
        md += [f"- FAIL: {f}" for f in v.get("failures", [])]
        if Path(paths.verify_png).is_file():
            atomic_copy(paths.verify_png, rep / "verify_blocks.png")
            md += ["", "![error by block](verify_blocks.png)"]
        md += [""]
    if Path(paths.bench).is_file():
        from runtimes.latency_table import format_table, mark_unstable, plot_rows

        b = json.loads(Path(paths.bench).read_text())
        if any("unstable" not in r for r in b["rows"]):  # a bench.json from before rows were flagged
            mark_unstable(b["rows"])
        md += ["## Latency on this host", "", "```", format_table(b["rows"]), "```", ""]
        shaky = [r for r in b["rows"] if r.get("unstable")]
        if shaky:
            md += [f"**{len(shaky)} row(s) marked ! are unstable** ("
                   + "; ".join(f"{r['model']} {r['backend']}/{r.get('kernel', '-')} {r['threads']} thr: "
                               f"{r.get('unstable_why')}" for r in shaky)
                   + "): their medians, and any x-vs-float ratio computed from them, are not reliable numbers.", ""]
        host = (b.get("hosts") or [{}])[0]
        if host:
            md += [f"Host: {host.get('cpu_model', '?')}, {host.get('usable_cpus', '?')} usable CPUs, "
                   f"{host.get('arch', '?')}. {host.get('lce_note', '')}", ""]
        plot_rows(rep / "latency.png", b["rows"])
        md += ["![latency](latency.png)", ""]
    arm = getattr(paths, "arm", None)
    if arm is not None and Path(arm).is_file():
        md += arm_markdown(json.loads(Path(arm).read_text()))
    out = rep / "README.md"
    atomic_write_text(out, "\n".join(md) + "\n")
    return out
