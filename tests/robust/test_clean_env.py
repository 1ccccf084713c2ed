"""Every entry point sets up TensorFlow's environment itself (common.tfenv): the commands run from a shell
without TF_USE_LEGACY_KERAS / TF_CPP_MIN_LOG_LEVEL (tests/conftest.py sets both for the test process; these
tests remove them from the child's environment) and print nothing of TensorFlow's start-up before their one
``error:`` line. Before: ``export.verify --lce`` on correct files ended in ``ImportError: larq needs legacy
Keras`` and exit 1 (verify's FAIL code)."""

from __future__ import annotations

import pytest

from tests.robust.util import assert_one_error, run_module, tiny_checkpoint


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny checkpoint with its ONNX and LCE models, exported in this process."""
    from export import to_lce, to_onnx

    d = tmp_path_factory.mktemp("clean")
    ck = tiny_checkpoint(d / "c.pt")
    assert to_onnx.main([str(ck), "-o", str(d / "m.onnx"), "--no-check"]) == 0
    assert to_lce.main([str(ck), "-o", str(d / "m.tflite")]) == 0
    return ck, d / "m.onnx", d / "m.tflite"


@pytest.mark.lce
def test_verify_passes_from_a_clean_environment(exported):
    ck, onnx_path, lce_path = exported
    r = run_module("export.verify", ck, "--onnx", onnx_path, "--lce", lce_path, "--limit", "2",
                   "--runtimes", "onnxruntime", "lce-default")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "PASS" in r.stdout


@pytest.mark.lce
def test_bench_on_a_tflite_from_a_clean_environment(exported):
    r = run_module("runtimes.bench", exported[2], "--runs", "1", "--warmup", "0", "--threads", "1",
                   "--kernels", "reference", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr


@pytest.mark.lce
def test_verify_error_is_the_only_stderr_line(exported, tmp_path):
    """A corrupt --lce: TensorFlow's start-up lines must not precede verify's one error line."""
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(exported[2].read_bytes()[:3000])
    r = run_module("export.verify", exported[0], "--lce", bad, "--limit", "2", "--runtimes", "lce-default")
    assert r.returncode == 2
    assert_one_error(r.stderr, "bad.tflite")


def test_argparse_errors_are_one_line():
    r = run_module("export.to_onnx", "c.pt", "--input-size", "x")
    assert r.returncode == 2
    assert_one_error(r.stderr, "--input-size", "--help")


@pytest.mark.slow
@pytest.mark.lce
def test_export_clis_from_a_clean_environment(tmp_path):
    ck = tiny_checkpoint(tmp_path / "c.pt")
    for module, out in (("export.to_lce", "m.tflite"), ("export.to_onnx", "m.onnx")):
        r = run_module(module, ck, "-o", tmp_path / out)
        assert r.returncode == 0, (module, r.stderr[-3000:])
    r = run_module("export.to_lce", ck, "--float", "-o", tmp_path / "f.tflite")
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.lce
def test_pipeline_verify_phase_from_a_clean_environment(exported, tmp_path):
    """``python -m pipeline --phases verify`` on a prepared --out folder (the files the earlier phases write)."""
    import shutil

    ck, onnx_path, lce_path = exported
    (tmp_path / "classifier").mkdir()
    (tmp_path / "export").mkdir()
    shutil.copy(ck, tmp_path / "classifier" / "checkpoint.pt")
    shutil.copy(onnx_path, tmp_path / "export" / "model.onnx")
    shutil.copy(lce_path, tmp_path / "export" / "model.tflite")
    for side in (".meta.json", ".audit.json"):
        shutil.copy(lce_path.with_suffix(side), tmp_path / "export" / f"model{side}")
    r = run_module("pipeline", "--phases", "verify", "--out", tmp_path, "--verify-limit", "2", "--no-localise",
                   timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "verify.json").is_file()
