"""End to end without a phone: real LCE + float exports -> assets step -> Java preprocessing -> interpreters.

Needs the [lce] extra (TensorFlow + larq-compute-engine) and a JDK; this is exactly what the app does, except that
the Android TFLite runtime is replaced by LCE's Python interpreter and TensorFlow's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("larq_compute_engine")
pytestmark = [pytest.mark.lce, pytest.mark.slow]  # ~100 s on 2 shared cores (two conversions)

from export import to_lce  # noqa: E402
from export.android_assets import main as assets_main  # noqa: E402
from runtimes.session import open_session  # noqa: E402
from train.checkpoint import reactnet_payload, save_checkpoint  # noqa: E402


def test_exported_models_run_on_java_preprocessed_samples(java_build, tmp_path, tiny_reactnet):
    from PIL import Image

    model = tiny_reactnet(blocks=2, size=32).eval()
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", reactnet_payload(model))
    lce_path, float_path = tmp_path / "m.tflite", tmp_path / "m_float.tflite"
    assert to_lce.main([str(ckpt), "-o", str(lce_path), "--dataset", "digits"]) == 0
    assert to_lce.main([str(ckpt), "-o", str(float_path), "--float", "--dataset", "digits"]) == 0
    out = tmp_path / "assets"
    # (the assets step also checks that the exporter's metadata sidecars agree with the assets)
    assert assets_main(["--lce", str(lce_path), "--float", str(float_path), "--checkpoint", str(ckpt), "-o", str(out),
                        "--dataset", "digits", "--samples", "4"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    h, w = meta["input"]["height"], meta["input"]["width"]

    lce = open_session(out / meta["models"]["lce"]["file"], "lce-default")
    flt = open_session(out / meta["models"]["float"]["file"], "tflite")
    assert list(flt.inputs[0].shape) == [1, h, w, 3]  # what the Android TfliteModel checks
    assert list(flt.outputs[0].shape) == [1, len(meta["class_names"])]
    for s in meta["samples"]:
        img = np.asarray(Image.open(out / s["file"]).convert("RGB"))
        (tmp_path / "s.rgb").write_bytes(img.tobytes())
        java_build.host_tool("preprocess", out / "metadata.json", tmp_path / "s.rgb", w, h, tmp_path / "s.f32")
        x = np.fromfile(tmp_path / "s.f32", dtype="<f4").reshape(1, h, w, 3)  # upright NHWC, as the app feeds
        with torch.no_grad():
            ref = model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()
        got_lce = next(iter(lce.run([x]).values())).reshape(ref.shape)
        got_float = next(iter(flt.run([x]).values()))
        for got in (got_lce, got_float):
            assert got.argmax() == ref.argmax(), s["file"]
            np.testing.assert_allclose(got, ref, atol=1e-3 * max(1.0, float(np.abs(ref).max())))
