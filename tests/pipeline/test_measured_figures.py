"""README's generated blocks (measured-run paragraph, results table) against their committed records."""

from __future__ import annotations

import json

import pytest

from common.errors import ConfigError
from pipeline import measured_figures as mf
from pipeline.readme_figures import README, main

RUN = {"run": {"started_utc": "2026-01-02T03:04:05+00:00", "seconds": 400.0, "phases": ["teacher", "stage1"],
               "load_start": 0.05, "load_end": 2.1, "cpu_model": "Some CPU", "logical_cpus": 2, "usable_cpus": 2,
               "commit": "0123456789abcdef", "dirty": False},
       "timings": {"teacher": 150.2, "stage1": 70.4},
       "teacher_check": {"infonce_ratio": 0.351, "view_gap": 0.52, "knn": 0.971, "knn_random_init": 0.931,
                         "passed": True},
       "accuracy": {"linear": 0.662, "knn": 0.558, "random_init_linear": 0.113, "random_init_knn": 0.12},
       "verify": {"passed": True, "stages": 17, "files": {"onnx": "stage-exact", "lce": "stage-exact"}},
       "bench_1_thread_ms": {"lce/default": 0.99, "lce/indirect": 0.46, "tflite/-": 0.98},
       "arm": {"layers": 31, "passed": 31, "portable_fallbacks": 0, "lce_default_insns": 100,
               "float_conv_insns": 560, "whole_model_ratio": 1.8}}


def test_pipeline_paragraph_states_machine_load_commit_and_figures():
    text = mf.render_pipeline_run(RUN)
    flat = " ".join(text.split())
    assert flat.startswith("**Measured: 3 min 41 s** for the 2 phases on 2 CPU cores (Some CPU; 1-minute load "
                           "average 0.05 just before it started; 2026-01-02, commit 0123456")
    assert "InfoNCE 0.35 × chance" in flat and "66.2 % linear / 55.8 % kNN" in flat
    assert "fastest kernel here (`indirect`) against 0.98 ms" in flat and "2.1×" in flat
    assert "31/31 binary convolutions agreed" in flat and "5.6× fewer aarch64 instructions" in flat
    assert "(1.8× for the whole model, estimated)" in flat
    assert "the ARM lane did not run (no qemu)" in " ".join(
        mf.render_pipeline_run({**RUN, "arm": {"not_run": "no qemu"}}).split())
    assert max(len(line) for line in text.splitlines()) <= 110
    assert "FAILED" in mf.render_pipeline_run({**RUN, "verify": {**RUN["verify"], "passed": False}})


def _results_doc(linear):
    run = lambda top1: {"linear": {"top1": top1}, "knn": {"top1": top1 - 0.1}, "kl": {}, "img_per_s": 50.0}
    return {"args": {"seeds": [0, 1]}, "table": {"burn": {"0": run(linear[0]), "1": run(linear[1])}}}


def test_blocks_are_checked_and_rewritten():
    table = mf.render_results_table(_results_doc([0.60, 0.64]))
    assert "| 2 | 62.0 ± 2.8 | 52.0 ± 2.8 |" in table and "--seeds 0 1 " in table
    readme = ("## Results on the embedded default\n\nBURN reads 62.0 ± 2.8 %.\n\n<!-- generated:results-table -->\n"
              "old\n<!-- /generated:results-table -->\n\n## Next\n")
    rendered = {"results-table": table}
    assert mf.block_drift(readme, rendered) == ["results-table: README's block differs from its record from line 1 "
                                                "(python -m pipeline.readme_figures --write rewrites it)"]
    fixed = mf.write_blocks(readme, rendered)
    assert mf.block_drift(fixed, rendered) == [] and mf.prose_drift(fixed, table) == []
    stale = fixed.replace("BURN reads 62.0 ± 2.8 %", "BURN reads 68.4 ± 1.5 %")
    assert mf.prose_drift(stale, table) == ["results prose quotes 68.4 ± 1.5, which the results table does not have"]
    assert mf.block_drift("no blocks", rendered) == ["results-table: README has no <!-- generated:results-table --> "
                                                     "block"]


def test_readme_blocks_match_the_committed_records():
    """The real README against docs/pipeline-run.json, docs/results-digits-tiny.json and docs/arm-reactnet224.json
    (seconds)."""
    rendered = mf.renderings()
    text = README.read_text()
    assert mf.block_drift(text, rendered) == []
    assert mf.prose_drift(text, rendered["results-table"]) == []


def test_cli_records_a_run_folder_and_refuses_an_unfinished_one(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    assert main(["--no-export", "--record-run", str(out), "--readme", str(README)]) == 2
    assert "timings.json is missing" in capsys.readouterr().err


def test_unreadable_record_is_a_config_error(tmp_path):
    (tmp_path / "timings.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot read"):
        mf.record_pipeline_run(tmp_path)


def _lane_row(op, neon_indirect):
    ok = {"ok": True, "detail": "identical"}
    flt = {"ok": True, "max_ulp_terms": 0.5, "detail": "max 0.50 ulp of terms"}
    return {"op": op, "layer": "3x3 56x56x128->128 same-zero", "out_type": "float32", "ok": True,
            "checks": {"bitpack": ok, "acc-bgemm": ok, "bgemm": flt, "acc-indirect": ok, "indirect": flt},
            "bgemm": {"kernel": "neon ruy kNeon int16-accumulator BGEMM", "neon": True, "insns": 1000},
            "indirect": {"kernel": "portable Kernel4x2Portable" if not neon_indirect else "neon Kernel8x4x1", "neon":
                         neon_indirect, "insns": 7000},
            "bitpack": {"kernel": "portable bitpack_bitfield", "neon": False, "insns": 50},
            "float_conv_insns": 11000}


def test_arm_record_renders_the_lane_tables_and_refuses_a_lane_that_did_not_run(tmp_path):
    report = {"model": "/somewhere/reactnet224.tflite", "image": "chelsea", "dispatch": [], "prerequisites": {},
              "lane": {"layers": [_lane_row(39, False), _lane_row(191, True)], "float_twin": None, "seconds": 60.0}}
    path = tmp_path / "arm.json"
    path.write_text(json.dumps(report))
    doc = mf.record_arm(path)
    assert doc["model"] == "reactnet224.tflite"  # not this machine's path
    text = mf.render_arm(doc)
    assert "**2/2 layers agree" in text and "PORTABLE FALLBACK" in text and "11.0x" in text
    assert not text.startswith("##")
    path.write_text(json.dumps({**report, "lane": {"unavailable": ["qemu-aarch64 not found"]}}))
    with pytest.raises(ConfigError, match="did not run"):
        mf.record_arm(path)
