"""runtimes.bench on inputs it cannot honestly time (issue #12 items 2, 9, 11)."""

from __future__ import annotations

import pytest
from onnx import TensorProto

from runtimes import bench
from runtimes.hostinfo import default_thread_counts
from runtimes.latency_table import add_speedups, format_table, mark_unstable
from tests.robust.models import onnx_with_inputs


def _one_error(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("inputs, op, message", [
    ([("x", TensorProto.FLOAT, ["N", 3, "H", "W"])], "Identity", "fixed height and width"),
    ([("x", TensorProto.INT64, [1, 3, 8, 8])], "Identity", "tensor(int64)"),
    ([("a", TensorProto.FLOAT, [1, 3, 8, 8]), ("b", TensorProto.FLOAT, [1, 3, 8, 8])], "Add", "has 2 (a, b)"),
    ([("x", TensorProto.FLOAT, [1, 8])], "Identity", "4-D image input"),
])
def test_onnx_signatures_bench_cannot_feed(tmp_path, capsys, inputs, op, message):
    """Before: a traceback (negative dimensions, a float fed to int64, the second input missing)."""
    path = onnx_with_inputs(tmp_path / "m.onnx", inputs, op)
    assert bench.main([str(path), "--runs", "1", "--no-progress", "--no-isolate"]) == 2
    assert message in _one_error(capsys)


def test_corrupt_onnx_is_refused_by_the_checker(onnx_model, tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(onnx_model.read_bytes()[:300])
    assert bench.main([str(bad), "--runs", "1", "--no-progress", "--no-isolate"]) == 2
    assert "ONNX model" in _one_error(capsys)


@pytest.mark.parametrize("flag", ["--json", "--csv", "--plot"])
def test_output_equal_to_input_is_refused(onnx_model, tmp_path, capsys, flag):
    """Before: ``runtimes.bench m.onnx --json m.onnx`` overwrote the model, exit 0."""
    m = tmp_path / "m.onnx"
    m.write_bytes(onnx_model.read_bytes())
    before = m.read_bytes()
    same = str(tmp_path / "." / "m.onnx")
    assert bench.main([str(m), "--runs", "1", "--no-progress", "--no-isolate", flag, same]) == 2
    assert "is the input file" in _one_error(capsys) and m.read_bytes() == before


def test_unwritable_output_fails_before_benchmarking(onnx_model, capsys):
    assert bench.main([str(onnx_model), "--runs", "1", "--no-progress", "--json", "/proc/x/b.json"]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and "median ms" not in out.out


def test_unstable_rows_are_flagged_in_table_and_speedups():
    """The issue's 2-core rows: 2 threads read 8.19 ms with p10-p90 0.80-33.50 ms next to 0.46 ms at 1 thread."""
    rows = [{"device": "host", "model": "m.tflite", "backend": "tflite", "kernel": "-", "threads": 1,
             "median_ms": 1.00, "p10_ms": 0.95, "p90_ms": 1.08},
            {"device": "host", "model": "m_lce.tflite", "backend": "lce", "kernel": "indirect", "threads": 1,
             "median_ms": 0.46, "p10_ms": 0.44, "p90_ms": 0.50},
            {"device": "host", "model": "m.tflite", "backend": "tflite", "kernel": "-", "threads": 2,
             "median_ms": 8.19, "p10_ms": 0.80, "p90_ms": 33.50},
            {"device": "host", "model": "m_lce.tflite", "backend": "lce", "kernel": "indirect", "threads": 2,
             "median_ms": 0.47, "p10_ms": 0.45, "p90_ms": 0.50}]
    add_speedups(rows, cpus=2)
    assert [r["unstable"] for r in rows] == [False, False, True, False]
    assert rows[1]["speedup_unstable"] is False and rows[3]["speedup_unstable"] is True  # compared to an unstable row
    table = format_table(rows)
    assert "8.19!" in table and "17.43x!" in table and "! = unstable (1 row(s))" in table
    assert "2.17x" in table and "2.17x!" not in table


def test_more_threads_than_cpus_is_unstable():
    rows = [{"device": "host", "threads": 4, "median_ms": 1.0, "p10_ms": 0.99, "p90_ms": 1.01},
            {"device": "pi", "threads": 4, "median_ms": 1.0, "p10_ms": 0.99, "p90_ms": 1.01}]
    mark_unstable(rows, cpus=2)
    assert rows[0]["unstable"] and "4 threads on 2 usable CPU(s)" in rows[0]["unstable_why"]
    assert rows[1]["unstable"] is False  # device rows: the host's CPU count says nothing about the device


def test_default_thread_counts_leave_a_cpu_free():
    assert default_thread_counts(1) == [1] and default_thread_counts(2) == [1]
    assert default_thread_counts(4) == [1, 2] and default_thread_counts(16) == [1, 2, 4, 8]
    assert bench.get_args_parser().parse_args(["m.onnx"]).threads is None  # resolved against this host at run time
