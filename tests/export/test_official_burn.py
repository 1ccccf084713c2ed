"""Official BURN checkpoints (OpenSelfSup layout, backbone FC(1024,1024) + neck) through both exporters."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export import to_onnx
from tests.export.helpers import lce_run, ort_run, randomize_eval_state, rel_err
from tests.train.official_burn import openselfsup_checkpoint
from train.models import reactnet_a


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(path, model): a width-0.25, 3-block ReActNet with the feature MLP and a BURN neck, saved officially."""
    torch.manual_seed(0)
    model = randomize_eval_state(reactnet_a(width=0.25, input_size=32, num_classes=16, num_blocks=3,
                                            head_hidden=8, feature_mlp=True))
    path = tmp_path_factory.mktemp("official") / "burn_stage2.pth"
    torch.save(openselfsup_checkpoint(model), path)
    return path, model


@pytest.mark.parametrize("output", ["features", "logits"])
def test_onnx_export_carries_the_feature_mlp(official, tmp_path, output):
    path, model = official
    out = tmp_path / "m.onnx"
    assert to_onnx.main([str(path), "-o", str(out), "--input-size", "32", "--model-output", output]) == 0
    proto = onnx.load(str(out))
    gemms = [n for n in proto.graph.node if n.op_type == "Gemm"]
    assert len(gemms) == (1 if output == "features" else 3)  # mlp.0 (+ the neck's two Linear layers)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = (model.forward_features(x) if output == "features" else model(x)).numpy()
    assert rel_err(ort_run(proto, x), ref) <= 1e-4


@pytest.mark.lce
def test_lce_export_carries_the_feature_mlp(official, tmp_path):
    pytest.importorskip("larq_compute_engine")
    from export import to_lce

    path, model = official
    out = tmp_path / "m.tflite"
    assert to_lce.main([str(path), "-o", str(out), "--input-size", "32", "--model-output", "features"]) == 0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model.forward_features(x).numpy()
    got = lce_run(out.read_bytes(), x)
    assert got.shape == ref.shape and rel_err(got, ref) <= 1e-3
    assert np.all(got >= 0)  # the ReLU after FC(C, C)
