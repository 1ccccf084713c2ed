"""README's measured figures: recorded from real runs into ``docs/*.json``, rendered into README's generated blocks.

Two records, each written by a command from a run folder and committed with the code it measured:

* ``docs/pipeline-run.json`` -- one ``python -m pipeline`` run (``record_pipeline_run(out)``): its phase
  timings, the machine and its load (``run_info.json``), the teacher's self-check, the accuracies, the
  equivalence gate's verdicts and the bench medians. README's "measured run" paragraph is rendered from it.
* ``docs/results-digits-tiny.json`` -- ``python -m pipeline.results`` (``record_results(out)``): every row's
  per-seed numbers. README's results table is rendered from it by the same ``format_table`` that writes
  ``<out>/results.md``.
* ``docs/arm-reactnet224.json`` -- the ARM lane on the full ReActNet-A at 224² (``benchmarks/arm_reactnet224.py``
  writes it, ``record_arm(path)`` copies it): README's aarch64 tables, rendered by the pipeline report's own
  ``arm_markdown``.

README holds each rendering between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``;
``python -m pipeline.readme_figures`` fails when a block differs from its rendering (``--write`` rewrites them).
Nothing here trains or times anything: the numbers are only as current as the run they were recorded from,
which each record names (date, commit, load).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_DOC = ROOT / "docs" / "pipeline-run.json"
RESULTS_DOC = ROOT / "docs" / "results-digits-tiny.json"
ARM_DOC = ROOT / "docs" / "arm-reactnet224.json"
PHASE_WORDS = {"teacher": "teacher", "stage1": "BURN stage 1", "stage2": "stage 2", "evaluate": "evaluate",
               "export": "export", "verify": "verify", "bench": "bench", "arm": "ARM lane", "report": "report"}


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: is it a finished python -m pipeline run folder?") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


# ------------------------------------------------------------------------------------------ pipeline run

def record_pipeline_run(out: Path) -> dict:
    """Distil a finished ``python -m pipeline`` folder into the JSON-ready record README is rendered from."""
    out = Path(out)
    timings, info = _read(out / "timings.json"), _read(out / "run_info.json")
    check, evals = _read(out / "teacher" / "teacher_check.json"), _read(out / "eval.json")
    verify, bench = _read(out / "verify.json"), _read(out / "bench.json")
    final = evals.get("burn-stage2") or next(v for k, v in evals.items() if k != "random-init")
    rand = evals.get("random-init", {})
    rows = [r for r in bench["rows"] if r.get("threads") == 1 and r.get("median_ms")]
    return {
        "about": "One python -m pipeline run on the embedded default, recorded by python -m pipeline.readme_figures "
                 "--record-run; README's measured-run paragraph is rendered from it.",
        "run": info, "timings": timings,
        "teacher_check": {"infonce_ratio": check["infonce"]["ratio"], "view_gap": check["view_cosine"]["gap"],
                          "knn": check["knn"]["teacher"], "knn_random_init": check["knn"]["random_init"],
                          "passed": all(check[k]["passed"] for k in ("infonce", "view_cosine", "knn"))},
        "accuracy": {"linear": final["linear"]["top1"], "knn": final["knn"]["top1"],
                     "random_init_linear": rand.get("linear", {}).get("top1"),
                     "random_init_knn": rand.get("knn", {}).get("top1")},
        "verify": {"passed": verify["passed"], "stages": len({s["stage"] for s in verify["stages"]}),
                   "files": {f["kind"]: f["guarantee"] for f in verify["files"]}},
        "bench_1_thread_ms": {f"{r['backend']}/{r['kernel']}": r["median_ms"] for r in rows},
        "arm": _arm_summary(out / "arm.json"),
    }


def _arm_summary(path: Path) -> dict:
    """The arm phase's result in a few numbers (or why it did not run)."""
    if not path.is_file():
        return {"not_run": "no arm.json (the run had no arm phase)"}
    lane = _read(path)["lane"]
    if "layers" not in lane:
        return {"not_run": "; ".join(lane.get("unavailable", [])) or lane.get("error", "unknown")}
    rows = lane["layers"]
    out = {"layers": len(rows), "passed": sum(bool(r["ok"]) for r in rows),
           "portable_fallbacks": sum(not r[k]["neon"] for r in rows for k in ("bgemm", "indirect") if r.get(k)),
           "lce_default_insns": sum(r["bgemm"]["insns"] for r in rows if r.get("bgemm"))}
    if rows and all("float_conv_insns" in r for r in rows):
        out["float_conv_insns"] = sum(r["float_conv_insns"] for r in rows)
    whole = lane.get("whole_model") or {}
    if "ratio" in whole:
        out["whole_model_ratio"] = whole["ratio"]
    return out


def _mmss(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def render_pipeline_run(doc: dict) -> str:
    """README's measured-run paragraph (markdown, wrapped at 110 columns)."""
    run, t, tc, acc, ver, ms = (doc[k] for k in ("run", "timings", "teacher_check", "accuracy", "verify",
                                                 "bench_1_thread_ms"))
    load = f"1-minute load average {run['load_start']} just before it started"
    phases = ", ".join(f"{PHASE_WORDS.get(k, k)} {v:.0f} s" for k, v in t.items())
    files = " and ".join(f"the {kind.upper()} file {g}" for kind, g in ver["files"].items())
    lce = {k.split("/", 1)[1]: v for k, v in ms.items() if k.startswith("lce/")}
    kernel = min(lce, key=lce.get) if lce else None
    flt = ms.get("tflite/-")
    timing = (f"the LCE model took {lce[kernel]:.2f} ms per image with its fastest kernel here (`{kernel}`) "
              f"against {flt:.2f} ms for the float TFLite twin (1 thread, {flt / lce[kernel]:.1f}×)"
              if kernel and flt else "the bench phase has no LCE/float pair")
    arm = doc.get("arm") or {}
    if "layers" in arm:
        arm_text = (f"; on LCE's aarch64 kernels under qemu {arm['passed']}/{arm['layers']} binary convolutions "
                    f"agreed with the x86 interpreter ({arm['portable_fallbacks']} portable-kernel fallbacks)")
        if "float_conv_insns" in arm:
            arm_text += (f", with {arm['float_conv_insns'] / arm['lce_default_insns']:.1f}× fewer aarch64 "
                         "instructions than the float twin's convolutions")
        if "whole_model_ratio" in arm:
            arm_text += f" ({arm['whole_model_ratio']:.1f}× for the whole model, estimated)"
    else:
        arm_text = f"; the ARM lane did not run ({arm.get('not_run', 'no record')})"
    rnd = (f" (random init: {100 * acc['random_init_linear']:.1f} % / {100 * acc['random_init_knn']:.1f} %)"
           if acc.get("random_init_linear") is not None else "")
    text = (f"**Measured: {_mmss(sum(t.values()))}** for the {len(t)} phases on {run['usable_cpus']} CPU cores "
            f"({run['cpu_model'] or 'unknown CPU'}; {load}; {run['started_utc'][:10]}, commit "
            f"{run['commit'][:7] or 'unknown'}{', with local changes' if run.get('dirty') else ''}): {phases}. "
            f"The teacher's check {'passed' if tc['passed'] else 'FAILED'} (InfoNCE {tc['infonce_ratio']:.2f} × "
            f"chance, view gap {tc['view_gap']:.2f}, kNN {100 * tc['knn']:.1f} % against "
            f"{100 * tc['knn_random_init']:.1f} % for its random-init twin), the binary network read "
            f"{100 * acc['linear']:.1f} % linear / {100 * acc['knn']:.1f} % kNN{rnd}, the gate "
            f"{'PASSed' if ver['passed'] else 'FAILED'} on {ver['stages']} stages with {files}, and {timing}"
            f"{arm_text}.")
    return _wrap(text)


def _wrap(text: str, width: int = 110) -> str:
    lines, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    return "\n".join([*lines, cur])


# ------------------------------------------------------------------------------------------ results table

def record_results(out: Path) -> dict:
    """``<out>/results.json`` of ``python -m pipeline.results`` as the committed record (runs + the arguments
    the table was generated with)."""
    res = _read(Path(out) / "results.json")
    # "args" is the last writing process's; several processes may have filled disjoint rows and seeds, so the
    # seeds the table states are the ones its runs have
    args = {**(res.get("args") or {}),
            "seeds": sorted({int(s) for row in res["runs"].values() for s in row}) or [0]}
    return {"about": "Raw numbers behind README's digits-tiny results table (linear/kNN top-1 as fractions; KL "
                     "curves: first logged step and every epoch end; img/s; seconds), recorded by python -m "
                     "pipeline.readme_figures --record-results from python -m pipeline.results.",
            "args": args, "table": res["runs"]}


def render_results_table(doc: dict) -> str:
    """README's results table: ``pipeline.results.format_table`` on the recorded runs and arguments."""
    from pipeline.results import format_table, results_parser

    args = results_parser().parse_args([])
    for k, v in doc.get("args", {}).items():
        setattr(args, k, v)
    return format_table({"runs": doc["table"]}, args).rstrip("\n")


# ------------------------------------------------------------------------------------------ ARM lane at 224²

def record_arm(path: Path) -> dict:
    """An ``arm.json`` (``runtimes.arm.arm_report``) of a lane run that ran, as the committed record."""
    report = _read(Path(path))
    if "layers" not in report.get("lane", {}):
        raise ConfigError(f"{path}: the lane did not run there ({report.get('lane')}); nothing to record")
    return {**report, "model": Path(report["model"]).name}


def render_arm(doc: dict) -> str:
    """README's aarch64 tables: the pipeline report's ARM section without its heading."""
    from pipeline.markdown_report import arm_markdown

    return "\n".join(arm_markdown(doc)[2:]).strip("\n")


# ------------------------------------------------------------------------------------------ README blocks

RENDERERS = {"pipeline-run": (PIPELINE_DOC, render_pipeline_run),
             "results-table": (RESULTS_DOC, render_results_table),
             "arm-reactnet224": (ARM_DOC, render_arm)}
_BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)\n?(<!-- /generated:(?P=name) -->)",
                    re.S)  # an empty block (the two markers on consecutive lines) matches too


def renderings(docs: dict[str, Path] | None = None) -> dict[str, str]:
    """{block name: its rendering from the committed record}."""
    docs = docs or {}
    return {name: render(_read(docs.get(name, path))) for name, (path, render) in RENDERERS.items()}


def readme_blocks(text: str) -> dict[str, str]:
    """{block name: README's text between its markers}."""
    return {m["name"]: m["body"] for m in _BLOCK.finditer(text)}


def block_drift(text: str, rendered: dict[str, str]) -> list[str]:
    """One line per generated block that is missing from README or differs from its rendering."""
    have, bad = readme_blocks(text), []
    for name, body in rendered.items():
        if name not in have:
            bad.append(f"{name}: README has no <!-- generated:{name} --> block")
        elif have[name] != body:
            first = next((i for i, (a, b) in enumerate(zip(have[name].splitlines(), body.splitlines())) if a != b),
                         min(len(have[name].splitlines()), len(body.splitlines())))
            bad.append(f"{name}: README's block differs from its record from line {first + 1} "
                       f"(python -m pipeline.readme_figures --write rewrites it)")
    return bad


def write_blocks(text: str, rendered: dict[str, str]) -> str:
    """README text with every generated block replaced by its rendering."""
    return _BLOCK.sub(lambda m: m.group(1) + rendered.get(m["name"], m["body"]) + "\n" + m.group(4), text)


_PM = re.compile(r"\d+\.\d ± \d+\.\d")


def prose_drift(text: str, table: str, section: str = "## Results on the embedded default") -> list[str]:
    """Every ``mean ± std`` figure in README's results section outside the table must be a cell of the table
    (the prose cannot quote a number the table no longer has)."""
    start = text.find(section)
    if start < 0:
        return [f"README has no '{section}' section"]
    end = text.find("\n## ", start + len(section))
    body = text[start:end if end > 0 else None]
    body = _BLOCK.sub("", body)
    cells = set(_PM.findall(table))
    return [f"results prose quotes {v}, which the results table does not have" for v in _PM.findall(body)
            if v not in cells]

