"""``python -m runtimes.bench`` end to end on the tiny models: table, JSON, CSV, PNG, errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtimes import bench

REPO = Path(__file__).parents[2]


def test_run_bench_rows(all_models):
    rows = bench.run_bench(list(all_models.values()), threads=[1, 2], runs=4, warmup=1,
                           kernels=["default", "indirect", "reference"], progress=False, memory=False)
    keys = {(r["backend"], r["kernel"], r["threads"]) for r in rows}
    assert keys == ({("onnxruntime", "-", t) for t in (1, 2)} | {("tflite", "-", t) for t in (1, 2)}
                    | {("lce", k, t) for k in ("default", "indirect", "reference") for t in (1, 2)})
    for r in rows:
        assert r["runs"] == 4 and 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["throughput_ips"] == pytest.approx(1e3 / r["median_ms"])
        assert r["model_bytes"] == Path(r["path"]).stat().st_size and r["peak_mem_mb"] is None
        assert r["speedup_vs_float_tflite"] > 0
    assert all(r["speedup_vs_float_tflite"] == 1.0 for r in rows if r["backend"] == "tflite")


def test_cli_outputs(all_models, tmp_path):
    js, cs, png = tmp_path / "b.json", tmp_path / "b.csv", tmp_path / "b.png"
    argv = [*map(str, all_models.values()), "--threads", "1", "2", "--runs", "3", "--warmup", "1", "--no-memory",
            "--kernels", "indirect", "reference", "--json", str(js), "--csv", str(cs), "--plot", str(png)]
    p = subprocess.run([sys.executable, "-m", "runtimes.bench", *argv], cwd=REPO, capture_output=True, text=True,
                       env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                            "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "LCE optimised ARM kernels: no (x86 host runs portable kernels)" in p.stdout or \
        "LCE optimised ARM kernels: yes" in p.stdout
    assert "median ms" in p.stdout and "tiny_lce.tflite" in p.stdout and "peak memory =" not in p.stdout
    data = json.loads(js.read_text())
    assert len(data["rows"]) == 8 and data["hosts"][0]["cpu_model"] and data["settings"]["runs"] == 3
    with open(cs) as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 8 and {ln["kernel"] for ln in lines} == {"-", "indirect", "reference"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_peak_memory_of_each_configuration(lce_model, tmp_path, capsys):
    """Each configuration's peak memory comes from its own fresh process: every LCE kernel gets a real figure
    (sharing one process, the kernels loaded later showed 0.0 MiB). About 8 s of CPU (three child processes)."""
    js = tmp_path / "m.json"
    assert bench.main([str(lce_model), "--threads", "1", "--runs", "2", "--warmup", "1", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "peak memory = peak RSS growth of a fresh process per configuration" in out
    assert "ARM (aarch64) lane for tiny_lce.tflite: not run (add --arm;" in out  # never silent
    rows = json.loads(js.read_text())["rows"]
    assert sorted(r["kernel"] for r in rows) == ["default", "indirect", "reference"]
    for r in rows:
        assert r["peak_mem_mb"] > 0.5 and r["mem_method"] == bench.CHILD_MEMORY_METHOD, r


@pytest.mark.parametrize("argv, msg", [
    (["missing.onnx"], "model file not found"),
    ([], "nothing to benchmark"),
])
def test_user_errors(argv, msg, capsys):
    assert bench.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and "Traceback" not in err


def test_corrupt_model(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"1234TFL3" + b"\xff" * 20)
    assert bench.main([str(bad), "--runs", "1"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_bad_option_values(onnx_model, capsys):
    assert bench.main([str(onnx_model), "--runs", "0"]) == 2
    assert "--runs must be an integer in [1, " in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        bench.main([str(onnx_model), "--kernels", "fast"])
    assert e.value.code == 2


def test_help_mentions_every_option():
    text = bench.get_args_parser().format_help()
    for opt in ("--threads", "--runs", "--warmup", "--kernels", "--json", "--csv", "--plot", "--ssh", "--ssh-port",
                "--ssh-key", "--ssh-remote-python", "--benchmark-binary", "--adb", "--adb-app-result"):
        assert opt in text


def test_app_result_merged_with_host_rows(onnx_model, tmp_path):
    app = {"format": "burn-edge/android-bench", "version": 1, "status": "ok", "error": None,
           "device": {"manufacturer": "Google", "model": "Pixel 6", "abi": "arm64-v8a", "android_release": "14"},
           "results": [{"model": "model_lce.tflite", "backend": "lce", "kernel": "lce-arm64-optimized",
                        "threads": 1, "warmup": 3, "runs": 20, "median_ms": 10.0, "p10_ms": 9.0, "p90_ms": 12.0,
                        "mean_ms": 10.5, "min_ms": 8.5, "max_ms": 14.0, "error": None}]}
    (tmp_path / "app.json").write_text(json.dumps(app))
    out = tmp_path / "t.json"
    assert bench.main([str(onnx_model), "--runs", "2", "--warmup", "0", "--adb-app-result", str(tmp_path / "app.json"),
                       "--json", str(out), "--no-progress"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["backend"] for r in rows] == ["onnxruntime", "lce"]
    assert rows[1]["device"].startswith("Google Pixel 6") and rows[1]["throughput_ips"] == pytest.approx(100.0)
