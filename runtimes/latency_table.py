"""Render benchmark rows: terminal table, JSON, CSV and a PNG bar chart.

A row is a flat dict (one per model x backend x kernel x threads x device); the keys are listed in ``COLUMNS``.
Latencies are milliseconds; ``p10_ms``/``p90_ms`` come from host runs, ``p5_ms``/``p95_ms`` from host runs and
from benchmark binaries that print them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from common.files import atomic_save, atomic_write_text, atomic_writer

COLUMNS = ["device", "model", "backend", "kernel", "threads", "batch", "runs", "warmup", "median_ms", "p10_ms",
           "p90_ms", "p5_ms", "p95_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "throughput_ips", "model_bytes",
           "peak_mem_mb", "speedup_vs_float_tflite", "unstable", "unstable_why", "speedup_unstable",
           "runner", "median_source", "mem_method", "path"]


def _is_float_tflite(row: dict) -> bool:
    return row.get("backend") == "tflite"


def add_speedups(rows: list[dict], cpus: int | None = None) -> None:
    """Mark unstable rows (:func:`mark_unstable`, ``cpus`` = usable CPUs of this host), then set
    ``speedup_vs_float_tflite`` = (median of the first plain-TFLite row with the same device and threads) /
    (this row's median), None without such a baseline; ``speedup_unstable`` when either row is unstable."""
    mark_unstable(rows, cpus)
    base = {}
    for r in rows:
        key = (r.get("device"), r.get("threads"))
        if _is_float_tflite(r) and r.get("median_ms") and key not in base:
            base[key] = r["median_ms"]
    base_unstable = {(r.get("device"), r.get("threads")): bool(r.get("unstable")) for r in rows
                     if _is_float_tflite(r) and r.get("median_ms")}
    for r in rows:
        key = (r.get("device"), r.get("threads"))
        b = base.get(key)
        r["speedup_vs_float_tflite"] = b / r["median_ms"] if b and r.get("median_ms") else None
        r["speedup_unstable"] = (bool(r.get("unstable")) or base_unstable.get(key, False)) if b else None


UNSTABLE_SPREAD = 0.5  # a row is unstable when (p90 - p10) / median exceeds this (p5-p95 where p10/p90 are absent)


def mark_unstable(rows: list[dict], cpus: int | None = None) -> None:
    """Set ``unstable`` on every row: True when its spread is wide ((p90 - p10) / median > UNSTABLE_SPREAD) or
    when it asked for more threads than the ``cpus`` this host can give (host rows only); None when the row has
    no percentiles. ``unstable_why`` says which."""
    for r in rows:
        lo, hi = r.get("p10_ms"), r.get("p90_ms")
        if lo is None or hi is None:
            lo, hi = r.get("p5_ms"), r.get("p95_ms")
        med = r.get("median_ms")
        why = []
        if None not in (lo, hi, med) and med > 0 and (hi - lo) / med > UNSTABLE_SPREAD:
            why.append(f"p10-p90 spread {(hi - lo) / med:.0%} of the median")
        if cpus and r.get("device", "host") == "host" and (r.get("threads") or 1) > cpus:
            why.append(f"{r['threads']} threads on {cpus} usable CPU(s)")
        r["unstable"] = bool(why) if (why or None not in (lo, hi, med)) else None
        r["unstable_why"] = "; ".join(why) or None


def unstable_note(rows: Sequence[dict]) -> str | None:
    """The legend line under a table with unstable rows (None when every row is stable)."""
    n = sum(1 for r in rows if r.get("unstable"))
    if not n:
        return None
    return (f"! = unstable ({n} row(s)): p10-p90 wider than {UNSTABLE_SPREAD:.0%} of the median or more threads "
            "than usable CPUs; the median of such a row (and any x vs float computed from it) is not a reliable "
            "number: rerun on an idle machine or with fewer threads")


def _f(v, fmt="{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _spread(r: dict) -> str:
    if r.get("p10_ms") is not None and r.get("p90_ms") is not None:
        return f"{r['p10_ms']:.2f}-{r['p90_ms']:.2f}"
    if r.get("p5_ms") is not None and r.get("p95_ms") is not None:
        return f"{r['p5_ms']:.2f}-{r['p95_ms']:.2f} (p5-p95)"
    if r.get("std_ms") is not None:
        return f"±{r['std_ms']:.2f} (std)"
    return "-"


def format_table(rows: Sequence[dict]) -> str:
    """Fixed-width text table: device, model, backend/kernel, threads, median [p10-p90] ms, img/s, MB, MiB, ×."""
    head = ["device", "model", "backend", "kernel", "thr", "median ms", "p10-p90 ms", "img/s", "file MB",
            "peak mem MiB", "x vs float tflite"]
    body = [[str(r.get("device", "host")), str(r.get("model")), str(r.get("backend")), str(r.get("kernel", "-")),
             str(r.get("threads")), _f(r.get("median_ms")) + ("!" if r.get("unstable") else ""), _spread(r),
             _f(r.get("throughput_ips"), "{:.1f}"),
             _f((r.get("model_bytes") or 0) / 1e6, "{:.3f}") if r.get("model_bytes") else "-",
             _f(r.get("peak_mem_mb"), "{:.1f}"),
             _f(r.get("speedup_vs_float_tflite"), "{:.2f}x") + ("!" if r.get("speedup_unstable") else "")]
            for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    note = unstable_note(rows)
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(b) for b in body)] + ([note] if note else []))


def write_json(path: str | Path, rows: Sequence[dict], hosts: Sequence[dict], settings: dict,
               arm: Sequence[dict] = ()) -> None:
    """{"hosts": [facts per machine], "settings": {...}, "rows": [...]} (+ "arm": the ARM lane's reports per LCE
    model, :func:`runtimes.arm.arm_report`, when given), written atomically."""
    doc = {"hosts": list(hosts), "settings": settings, "rows": list(rows)}
    if arm:
        doc["arm"] = list(arm)
    atomic_write_text(path, json.dumps(doc, indent=2, default=str))


def write_csv(path: str | Path, rows: Sequence[dict]) -> None:
    """One line per row; ``COLUMNS`` first, then any extra keys in order of appearance; written atomically."""
    cols = list(COLUMNS)
    for r in rows:
        cols += [k for k in r if k not in cols]
    with atomic_writer(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})


BACKEND_COLORS = {"lce": "#2b8cbe", "tflite": "#f03b20", "onnxruntime": "#31a354"}


def plot_rows(path: str | Path, rows: Sequence[dict], title: str = "Inference latency (median; whiskers p10-p90)"):
    """Horizontal bar chart of median latency per row, whiskers p10-p90 (or p5-p95), coloured by backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("median_ms") is not None]
    labels, med, lo, hi, colors = [], [], [], [], []
    for r in rows:
        k = f"/{r['kernel']}" if r.get("kernel") not in (None, "-") else ""
        dev = "" if r.get("device", "host") == "host" else f"{r['device']} "
        flag = " (unstable!)" if r.get("unstable") else ""
        labels.append(f"{dev}{r['model']} {r['backend']}{k} {r['threads']}thr{flag}")
        m = r["median_ms"]
        a = r.get("p10_ms") if r.get("p10_ms") is not None else r.get("p5_ms")
        b = r.get("p90_ms") if r.get("p90_ms") is not None else r.get("p95_ms")
        med.append(m)
        lo.append(max(0.0, m - a) if a is not None else 0.0)
        hi.append(max(0.0, b - m) if b is not None else 0.0)
        colors.append(BACKEND_COLORS.get(r.get("backend"), "#777777"))
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rows) + 1.5))
    y = list(range(len(rows)))
    bars = ax.barh(y, med, xerr=[lo, hi], color=colors, capsize=3)
    for bar, r in zip(bars, rows):  # an unstable median is drawn hatched and pale: not a number to compare
        if r.get("unstable"):
            bar.set_hatch("//")
            bar.set_alpha(0.45)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    batches = sorted({int(r.get("batch") or 1) for r in rows})
    ax.set_xlabel("latency per call (ms)" + (f", {batches[0]} image(s) per call" if len(batches) == 1 else
                                             ", batch per row"))
    ax.set_title(title, fontsize=10)
    for yi, m, h in zip(y, med, hi):
        ax.text(m + h, yi, f"  {m:.2f}", va="center", fontsize=7)
    shown = [b for b in BACKEND_COLORS if any(r.get("backend") == b for r in rows)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=BACKEND_COLORS[b]) for b in shown]
    names = {"lce": "LCE (binary)", "tflite": "float TFLite", "onnxruntime": "onnxruntime (float)"}
    if any(r.get("unstable") for r in rows):
        handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="gray", hatch="//"))
        shown.append("unstable")
    ax.legend(handles, [names.get(b, b) for b in shown], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    try:
        atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
