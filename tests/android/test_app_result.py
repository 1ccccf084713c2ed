"""runtimes.app_result parses the JSON the app's Java ResultWriter writes (produced here by the real class)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.android.writer import write_android_assets
from runtimes.app_result import EXTRA_KEYS, ROW_KEYS, AppResultError, load_app_result, parse_app_result
from tests.android.test_android_assets import model_copy


@pytest.fixture(scope="module")
def java_result(java_build, tmp_path_factory, lce_model, float_tflite_model) -> dict:
    """A result file written by org.burnedge.demo.logic.ResultWriter (via HostTool sample-result)."""
    d = tmp_path_factory.mktemp("app_result")
    model_copy(lce_model, d / "lce.tflite")
    model_copy(float_tflite_model, d / "float.tflite")
    meta = write_android_assets(d / "assets", lce_model=d / "lce.tflite", float_model=d / "float.tflite",
                                arch={}, input_size=16, mean=(0.5,) * 3, std=(0.25,) * 3,
                                class_names=["a", "b"], source_checkpoint=None)
    java_build.host_tool("sample-result", meta, d / "bench_result.json")
    return json.loads((d / "bench_result.json").read_text())


class TestJavaWrittenFile:
    def test_rows(self, java_result):
        rows = parse_app_result(java_result)
        assert [(r["model"], r["backend"]) for r in rows] == [("model_lce.tflite", "lce"),
                                                              ("model_float.tflite", "tflite")]
        for r in rows:
            assert tuple(r) == ROW_KEYS + EXTRA_KEYS
            assert r["threads"] == 2 and r["runs"] == 7 and r["warmup"] == 3 and r["runner"] == "android-app"
            assert 0 <= r["min_ms"] <= r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["max_ms"]
            assert r["device"].startswith("host jvm-")
        assert rows[1]["kernel"] == "tflite-xnnpack" and rows[0]["kernel"].startswith("lce-unoptimized-")

    def test_failed_entries_are_skipped_or_kept(self, java_result):
        rows = parse_app_result(java_result, include_failed=True)
        assert len(rows) == 3
        assert rows[2]["median_ms"] is None and "LceQuantize" in rows[2]["error"]
        assert rows[0]["error"] is None

    def test_load_from_file(self, java_result, tmp_path):
        p = tmp_path / "r.json"
        p.write_text(json.dumps(java_result))
        assert load_app_result(p) == parse_app_result(java_result)


def test_java_latency_stats_match_numpy(java_build, tmp_path):
    """The app's median/p10/p90 are numpy's linear-interpolation percentiles."""
    for n in (1, 2, 7, 50):
        ms = np.random.default_rng(n).gamma(2.0, 3.0, size=n)
        (tmp_path / "ms.txt").write_text("\n".join(repr(float(v)) for v in ms))
        java_build.host_tool("stats", tmp_path / "ms.txt", tmp_path / "s.json")
        s = json.loads((tmp_path / "s.json").read_text())
        for key, q in (("median_ms", 50), ("p10_ms", 10), ("p90_ms", 90)):
            assert s[key] == pytest.approx(np.percentile(ms, q), rel=1e-12, abs=1e-12), (n, key)
        assert s["mean_ms"] == pytest.approx(ms.mean(), rel=1e-12) and s["runs"] == n


def minimal(**over) -> dict:
    entry = {"model": "m.tflite", "backend": "lce", "kernel": "lce-arm64-optimized", "threads": 4, "warmup": 1,
             "runs": 3, "median_ms": 2.0, "p10_ms": 1.0, "p90_ms": 3.0, "mean_ms": 2.0, "min_ms": 1.0, "max_ms": 3.0,
             "error": None}
    obj = {"format": "burn-edge/android-bench", "version": 1, "status": "ok", "error": None,
           "device": {"manufacturer": "Google", "model": "Pixel 6", "abi": "arm64-v8a", "android_release": "14"},
           "results": [entry]}
    for k, v in over.items():
        if k.startswith("entry_"):
            entry[k[6:]] = v
        else:
            obj[k] = v
    return obj


class TestErrors:
    def test_minimal_file(self):
        (row,) = parse_app_result(minimal())
        assert row["device"] == "Google Pixel 6 (arm64-v8a, Android 14)"

    @pytest.mark.parametrize("over, message", [
        ({"format": "other"}, "not a burn-edge Android result"),
        ({"version": 2}, "version 2 is not supported"),
        ({"status": "error", "error": "no metadata.json in assets"}, "failed run: no metadata.json in assets"),
        ({"results": {}}, "results has the wrong type"),
        ({"entry_backend": "gpu"}, "backend 'gpu' is not one of"),
        ({"entry_runs": True}, "runs has the wrong type"),
        ({"entry_runs": 0}, "expected >= 1"),
        ({"entry_median_ms": -1.0}, "is not a latency"),
        ({"entry_threads": "4"}, "threads has the wrong type"),
    ])
    def test_rejected(self, over, message):
        with pytest.raises(AppResultError, match=message):
            parse_app_result(minimal(**over))

    def test_missing_key(self):
        obj = minimal()
        del obj["results"][0]["p90_ms"]
        with pytest.raises(AppResultError, match=r"results\[0\] has no 'p90_ms'"):
            parse_app_result(obj)

    def test_bad_files(self, tmp_path):
        with pytest.raises(AppResultError, match="not found"):
            load_app_result(tmp_path / "nope.json")
        (tmp_path / "bad.json").write_text("{")
        with pytest.raises(AppResultError, match="not valid JSON"):
            load_app_result(tmp_path / "bad.json")


def test_runtimes_bench_merges_the_app_file(java_result, tmp_path, capsys):
    """`python -m runtimes.bench --adb-app-result FILE` puts the app's rows in its table (and the LCE speed-up)."""
    from runtimes.bench import main as bench_main

    (tmp_path / "bench_result.json").write_text(json.dumps(java_result))
    assert bench_main(["--adb-app-result", str(tmp_path / "bench_result.json"), "--json",
                       str(tmp_path / "table.json")]) == 0
    rows = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert [r["backend"] for r in rows] == ["lce", "tflite"]
    assert rows[0]["speedup_vs_float_tflite"] == pytest.approx(rows[1]["median_ms"] / rows[0]["median_ms"])
    assert "model_lce.tflite" in capsys.readouterr().out
