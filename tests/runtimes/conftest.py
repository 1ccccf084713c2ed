"""Session fixtures: tiny ONNX / float-TFLite / LCE models, built once (a few seconds each)."""

from __future__ import annotations

import pytest

from tests.runtimes import tiny_models


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runtime_models")


@pytest.fixture(scope="session")
def onnx_model(model_dir):
    return tiny_models.build_onnx(model_dir / "tiny.onnx")


@pytest.fixture(scope="session")
def float_tflite_model(model_dir):
    pytest.importorskip("tensorflow")
    return tiny_models.build_float_tflite(model_dir / "tiny_float.tflite")


@pytest.fixture(scope="session")
def lce_model(model_dir):
    pytest.importorskip("larq_compute_engine")
    return tiny_models.build_lce_tflite(model_dir / "tiny_lce.tflite")


@pytest.fixture(scope="session")
def all_models(onnx_model, float_tflite_model, lce_model):
    """{backend: path} for every host backend."""
    return {"onnxruntime": onnx_model, "tflite": float_tflite_model, "lce": lce_model}
