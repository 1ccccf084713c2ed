"""Every host backend through runtimes.load on tiny real models (ONNX, float TFLite, LCE)."""

from __future__ import annotations

import numpy as np
import pytest

import runtimes
from tests.runtimes import tiny_models as tm

pytestmark = pytest.mark.lce


@pytest.mark.parametrize("backend", list(runtimes.RUNNER_CLASSES))
class TestEveryBackend:
    def test_detect_and_run(self, backend, all_models):
        path = all_models[backend]
        assert runtimes.detect_backend(path) == backend
        r = runtimes.load(path, threads=1)
        assert isinstance(r, runtimes.Runner)
        assert r.backend == backend and r.input_shape == (1, 3, tm.SIZE, tm.SIZE)
        x = r.example_input(batch=3)
        y = r.run(x)
        assert y.shape == (3, tm.CLASSES) and y.dtype == np.float32 and np.isfinite(y).all()
        # the batch loop equals per-image runs, and a run is deterministic
        np.testing.assert_allclose(np.concatenate([r.run(x[i:i + 1]) for i in range(3)]), y, rtol=1e-5, atol=1e-5)

    def test_metadata_and_preprocess(self, backend, all_models):
        r = runtimes.load(all_models[backend])
        assert r.meta.mean == tuple(tm.MEAN) and r.meta.std == tuple(tm.STD) and r.meta.input_hw == (tm.SIZE,) * 2
        img = np.random.default_rng(1).integers(0, 256, (2, tm.SIZE, tm.SIZE, 3), dtype=np.uint8)
        x = r.preprocess(img)
        want = (img.transpose(0, 3, 1, 2) / 255.0 - np.reshape(tm.MEAN, (1, 3, 1, 1))) / np.reshape(tm.STD,
                                                                                                   (1, 3, 1, 1))
        np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-5)
        assert r.run(x).shape == (2, tm.CLASSES)

    def test_two_threads_same_output(self, backend, all_models):
        x = np.random.default_rng(2).standard_normal((2, 3, tm.SIZE, tm.SIZE)).astype(np.float32)
        y1 = runtimes.load(all_models[backend], threads=1).run(x)
        y2 = runtimes.load(all_models[backend], threads=2).run(x)
        np.testing.assert_allclose(y1, y2, rtol=1e-4, atol=1e-4)


class TestLceKernels:
    def test_kernels_agree(self, lce_model):
        x = np.random.default_rng(3).standard_normal((2, 3, tm.SIZE, tm.SIZE)).astype(np.float32)
        outs = {k: runtimes.load(lce_model, kernel=k).run(x) for k in runtimes.LCE_KERNELS}
        for k in ("indirect", "reference"):
            np.testing.assert_allclose(outs[k], outs["default"], rtol=1e-4, atol=1e-4)

    def test_lce_ops_detected(self, lce_model, float_tflite_model):
        assert {"LceQuantize", "LceBconv2d"} <= set(runtimes.tflite_op_names(lce_model))
        assert not any(n.startswith("Lce") for n in runtimes.tflite_op_names(float_tflite_model))

    def test_float_model_forced_onto_lce_interpreter(self, float_tflite_model):
        x = np.random.default_rng(4).standard_normal((1, 3, tm.SIZE, tm.SIZE)).astype(np.float32)
        a = runtimes.load(float_tflite_model).run(x)
        b = runtimes.load(float_tflite_model, backend="lce").run(x)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


class TestErrors:
    def test_missing_file(self, tmp_path):
        with pytest.raises(runtimes.ModelFileError, match="not found"):
            runtimes.load(tmp_path / "nope.onnx")

    def test_unknown_suffix(self, tmp_path):
        (tmp_path / "m.pt").write_bytes(b"x")
        with pytest.raises(runtimes.ModelFileError, match="unknown model type"):
            runtimes.load(tmp_path / "m.pt")

    @pytest.mark.parametrize("name", ["bad.onnx", "bad.tflite"])
    def test_corrupt_file(self, tmp_path, name):
        (tmp_path / name).write_bytes(b"\x00garbage" * 10)
        with pytest.raises(runtimes.ModelFileError):
            runtimes.load(tmp_path / name)

    def test_lce_model_on_stock_tflite_is_refused(self, lce_model):
        with pytest.raises(runtimes.RuntimeBackendError, match="LCE custom ops"):
            runtimes.load(lce_model, backend="tflite")

    def test_bad_options(self, onnx_model, lce_model):
        with pytest.raises(runtimes.RuntimeBackendError, match="unknown backend"):
            runtimes.load(onnx_model, backend="tensorrt")
        with pytest.raises(runtimes.RuntimeBackendError, match="LCE models only"):
            runtimes.load(onnx_model, kernel="indirect")
        with pytest.raises(runtimes.RuntimeBackendError, match="unknown LCE kernel"):
            runtimes.load(lce_model, kernel="fast")
        with pytest.raises(runtimes.RuntimeBackendError, match="threads"):
            runtimes.load(onnx_model, threads=0)

    def test_wrong_input_shape(self, onnx_model):
        with pytest.raises(ValueError, match="NCHW"):
            runtimes.load(onnx_model).run(np.zeros((1, tm.SIZE, tm.SIZE, 3), np.float32))
