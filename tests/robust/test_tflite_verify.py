"""The TFLite flatbuffer verifier (issue #12 item 3): a truncated or corrupt model never reaches a native runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import ModelFileError
from runtimes.tflite_verify import load_schema, verify_tflite
from tests.robust.models import zero_conv_stride

REPO = Path(__file__).parents[2]
pytestmark = pytest.mark.lce


def test_schema_is_read_from_tensorflow():
    tables, enums = load_schema()
    tensor = {f.name: f for f in tables["Tensor"].values()}
    assert tensor["Shape"].kind == "vector_scalar" and tensor["Shape"].size == 4
    assert tensor["Quantization"].kind == "table" and tensor["Quantization"].ref == "QuantizationParameters"
    op = {f.name: f for f in tables["Operator"].values()}
    assert op["BuiltinOptions"].kind == "union" and op["CustomOptions"].size == 1
    assert enums["BuiltinOptions"][1] == "Conv2DOptions"


def test_valid_models_pass(lce_model, float_tflite_model):
    for m in (lce_model, float_tflite_model):
        verify_tflite(m.read_bytes())


def test_every_truncation_is_refused(lce_model, float_tflite_model):
    for m in (lce_model, float_tflite_model):
        data = m.read_bytes()
        for n in range(0, len(data), 7):
            with pytest.raises(ModelFileError, match="TFLite flatbuffer"):
                verify_tflite(data[:n])


def test_dataflow_rewiring_is_refused(float_tflite_model):
    """A bit flip that rewires an operator's output (found by fuzzing: the float runtime segfaulted on it)."""
    from runtimes import tflite_verify as tv

    data = float_tflite_model.read_bytes()
    tables, enums = load_schema()
    v = tv._Verifier(data, tables, enums)
    g = tv._fields(v, tv._vec_tables(v, tv._fields(v, v.deref(0, "r"), "Model")["Subgraphs"])[0], "SubGraph")
    outputs = tv._vec_ints(v, g["Outputs"])
    op0 = tv._fields(v, tv._vec_tables(v, g["Operators"])[0], "Operator")
    pos = v.deref(op0["Outputs"], "o") + 4
    bad = bytearray(data)
    bad[pos:pos + 4] = outputs[0].to_bytes(4, "little")  # op 0 now writes the graph output
    with pytest.raises(ModelFileError, match="writes tensor|nothing before it produces"):
        verify_tflite(bytes(bad))


def test_truncated_lce_model_in_bench_is_an_error_not_a_segfault(lce_model, tmp_path):
    """Before: ``runtimes.bench`` died with SIGSEGV (exit 139) on the first half of a valid LCE model."""
    half = tmp_path / "half.tflite"
    half.write_bytes(lce_model.read_bytes()[: lce_model.stat().st_size // 2])
    p = subprocess.run([sys.executable, "-m", "runtimes.bench", str(half), "--runs", "1", "--no-progress"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "corrupt TFLite flatbuffer" in err[0], err


def test_native_crash_becomes_an_error_line(lce_model, tmp_path):
    """A model the verifier cannot judge (stride 0) aborts LCE: bench test-loads it in a child process first."""
    bad = tmp_path / "stride0.tflite"
    bad.write_bytes(zero_conv_stride(lce_model.read_bytes()))
    verify_tflite(bad.read_bytes())  # structurally valid
    p = subprocess.run([sys.executable, "-m", "runtimes.bench", str(bad), "--runs", "1", "--no-progress"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "crashed (SIGABRT)" in err[0] and "stride0.tflite" in err[0], err
