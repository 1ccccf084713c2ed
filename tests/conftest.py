import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

from train.models import reactnet_a  # noqa: E402


def tiny_models():
    from tests.runtimes import tiny_models as tm

    return tm


@pytest.fixture
def tiny_reactnet():
    """Seeded tiny ReActNet-A factory: tiny_reactnet(blocks=2, size=32, ...)."""

    def make(blocks: int = 2, size: int = 32, width: float = 0.25, num_classes: int = 10, seed: int = 0, **kw):
        torch.manual_seed(seed)
        return reactnet_a(width=width, input_size=size, num_classes=num_classes, num_blocks=blocks, **kw)

    return make


# Tiny ONNX / float-TFLite / LCE models (tests/runtimes/tiny_models.py), built once per session for every
# test package that uses them (runtimes, robust).
@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runtime_models")


@pytest.fixture(scope="session")
def onnx_model(model_dir):
    return tiny_models().build_onnx(model_dir / "tiny.onnx")


@pytest.fixture(scope="session")
def float_tflite_model(model_dir):
    pytest.importorskip("tensorflow")
    return tiny_models().build_float_tflite(model_dir / "tiny_float.tflite")


@pytest.fixture(scope="session")
def lce_model(model_dir):
    pytest.importorskip("larq_compute_engine")
    return tiny_models().build_lce_tflite(model_dir / "tiny_lce.tflite")


@pytest.fixture(scope="session")
def all_models(onnx_model, float_tflite_model, lce_model):
    """{backend: path} for every host backend."""
    return {"onnxruntime": onnx_model, "tflite": float_tflite_model, "lce": lce_model}


@pytest.fixture(scope="session")
def realistic_model():
    """Factory for the realistic full-size ReActNet-A (see ``tests/realistic.py``), cached per arguments:
    ``realistic_model(input_size=224, seed=0, **kw)``. Tests must not modify the returned model."""
    from tests.realistic import realistic_reactnet

    cache = {}

    def make(input_size: int = 224, seed: int = 0, **kw):
        key = (input_size, seed, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = realistic_reactnet(input_size, seed, **kw)
        return cache[key]

    return make
