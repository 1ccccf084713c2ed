"""runtimes.session: the one way into onnxruntime / TFLite / LCE, on the real runtimes."""

import numpy as np
import pytest

from common.errors import ModelFileError
from runtimes.errors import RuntimeBackendError
from runtimes.session import Engine, open_session


def test_engine_is_a_typed_pair():
    assert Engine("lce").kernel == "default" and Engine("lce", "indirect").label == "lce-indirect"
    assert Engine.parse("lce-reference") == Engine("lce", "reference")
    assert Engine.parse("onnxruntime") == Engine("onnxruntime") and Engine("tflite").kernel == "-"
    with pytest.raises(RuntimeBackendError, match="unknown LCE kernel"):
        Engine("lce", "fast")
    with pytest.raises(RuntimeBackendError, match="LCE models only"):
        Engine("onnxruntime", "indirect")
    with pytest.raises(RuntimeBackendError, match="unknown backend"):
        Engine("tensorrt")


def test_onnx_bytes_and_path_give_the_same_named_outputs(onnx_model):
    by_path = open_session(onnx_model, "onnxruntime")
    x = np.random.default_rng(0).standard_normal((3, *by_path.inputs[0].shape[1:])).astype(np.float32)
    by_bytes = open_session(onnx_model.read_bytes(), Engine("onnxruntime"))
    name = by_path.input_names[0]
    assert by_path.input_names == by_bytes.input_names == [name]
    a, b = by_path.run({name: x}), by_bytes.run([x])
    assert list(a) == by_path.output_names and all(np.array_equal(a[k], b[k]) for k in a)
    assert by_path.metadata  # burn-edge's metadata_props


@pytest.mark.lce
@pytest.mark.parametrize("engine", ["tflite", "lce-default", "lce-indirect", "lce-reference"])
def test_tflite_and_lce_run_batched_equals_one_by_one(engine, float_tflite_model, lce_model):
    path = float_tflite_model if engine == "tflite" else lce_model
    s = open_session(path, engine)
    assert s.engine == Engine.parse(engine) and s.inputs[0].shape[0] == 1 and len(s.inputs) == 1
    x = np.random.default_rng(1).standard_normal((3, *s.inputs[0].shape[1:])).astype(np.float32)
    batched = s.run_batched([x])[s.output_names[0]]
    single = np.concatenate([s.run([x[i:i + 1]])[s.output_names[0]] for i in range(3)])
    assert batched.shape[0] == 3 and np.array_equal(batched, single)


def test_missing_inputs_and_bad_files_are_clear_errors(onnx_model, tmp_path):
    s = open_session(onnx_model, "onnxruntime")
    with pytest.raises(ValueError, match="missing model inputs"):
        s.run({"not_an_input": np.zeros((1, 3, 32, 32), np.float32)})
    with pytest.raises(ValueError, match="cannot run"):
        s.run([np.zeros((1, 3, 7, 7), np.float32)])
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 20)
    with pytest.raises(ModelFileError, match="bad.onnx is not a readable ONNX model"):
        open_session(tmp_path / "bad.onnx", "onnxruntime")
    with pytest.raises(ModelFileError, match="cannot read"):
        open_session(tmp_path / "none.onnx", "onnxruntime")
    with pytest.raises(ModelFileError):
        open_session(b"TFL3 not a flatbuffer" * 4, "lce-default", what="the bytes")


@pytest.mark.lce
def test_isolate_turns_a_native_crash_into_an_error(lce_model):
    """conv stride 0 passes the bounds verifier but makes LCE abort in Prepare: in-process that would kill
    the caller; with isolate=True the child dies and the caller gets one ModelFileError."""
    from tests.robust.models import zero_conv_stride

    bad = zero_conv_stride(lce_model.read_bytes())
    with pytest.raises(ModelFileError, match="the model: the lce runtime crashed|crashed"):
        open_session(bad, "lce-default", isolate=True, what="the model")
    assert open_session(lce_model, "lce-default", isolate=True).output_names
