"""LCE export vs PyTorch in the real LCE converter + interpreter (default, reference and indirect kernels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("larq_compute_engine")
pytestmark = pytest.mark.lce

from common.files import sha256_file  # noqa: E402
from export import audit as audit_cli  # noqa: E402
from export import to_lce  # noqa: E402
from export.audit import audit_flatbuffer  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.lce import build_keras, convert  # noqa: E402
from runtimes.format import AUDIT_SUFFIX, LCE_KERNELS, META_KIND, META_LAYOUT, META_SOURCE, sidecar_path  # noqa: E402
from tests.export.helpers import edge_case_model, lce_run, randomize_eval_state, rel_err, torch_out  # noqa: E402
from train.models import reactnet_a  # noqa: E402


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def test_full_depth_reduced_resolution_converts_to_31_bconvs():
    """13 blocks (ReActNet-A's depth) at 32², width 0.25: 31 LceBconv2d + the float stem, no fallback."""
    torch.manual_seed(0)
    model = randomize_eval_state(reactnet_a(width=0.25, input_size=32, num_classes=10))
    km = build_keras(model)
    x = torch.randn(1, 3, 32, 32)
    assert rel_err(km.predict(_nhwc(x), verbose=0), torch_out(model, x)) <= 1e-4  # Keras port, exact geometry
    report = audit_flatbuffer(convert(km), model)
    assert report.ok and report.n_lce_bconv == 31 and report.n_float_conv == 1
    assert report.op_counts.get("LceDequantize", 0) == 0
    assert [r.module for r in report.convs][:3] == ["blocks.0.conv3x3", "blocks.0.conv1x1.0", "blocks.0.conv1x1.1"]
    assert all(r.op == "LceBconv2d" and r.weight_bytes > 0 for r in report.convs)


@pytest.fixture(scope="module")
def converted():
    """One conversion per padding mode, shared by the focused tests (2 blocks at 16², random state).

    "zero" is the edge-case net of test_onnx (exact-zero binariser inputs and exact-zero latent weights).
    """
    torch.manual_seed(2)
    one = randomize_eval_state(reactnet_a(width=0.25, input_size=16, num_classes=10, num_blocks=2,
                                          padding="one"), seed=2)
    return {name: (m, convert(build_keras(m))) for name, m in (("zero", edge_case_model()), ("one", one))}


@pytest.mark.parametrize("padding", ["zero", "one"])
def test_padding_modes_and_stride2_geometry(padding, converted):
    """Stem (s2) and blocks.1 (s2) at even sizes: the flip trick must reproduce PyTorch's top/left padding."""
    model, flat = converted[padding]
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    tap = build_keras(model, upto="blocks.1")  # (1, 4, 4, 32) after two stride-2 stages
    with torch.no_grad():
        ref_tap = model.blocks[1](model.blocks[0](model.stem(x[:1])))
    assert rel_err(tap.predict(_nhwc(x[:1]), verbose=0).transpose(0, 3, 1, 2), ref_tap.numpy()) <= 1e-5
    report = audit_flatbuffer(flat, model)
    assert report.ok and report.n_lce_bconv == 6
    s2 = next(r for r in report.convs if r.module == "blocks.1.conv3x3")
    assert (s2.stride, s2.padding, s2.pad_values) == (2, "SAME", 1.0 if padding == "one" else 0.0)
    ref = torch_out(model, x)
    for kernel in LCE_KERNELS:
        assert rel_err(lce_run(flat, x, kernel), ref) <= 1e-3, kernel


def test_sign_of_zero_and_zero_weights_stay_binary_and_match(converted):
    model, flat = converted["zero"]
    assert bool((model.blocks[0].conv3x3.weight[:, :, 1, 1] == 0).all())
    report = audit_flatbuffer(flat, model)
    assert report.ok and report.n_lce_bconv == 6  # the zero weights did not force a float fallback
    x = torch.randn(2, 3, 16, 16)
    pre = model.stem(x) + model.blocks[0].rsign1.bias
    assert bool((pre[:, :4] == 0).all())  # binariser inputs exactly at the threshold: sign(0) must be +1
    for kernel in LCE_KERNELS:
        assert rel_err(lce_run(flat, x, kernel), torch_out(model, x)) <= 1e-4, kernel


def test_float_fallback_is_detected_and_cli_fails(tmp_path, tiny_reactnet, capsys):
    """Corrupt one binary kernel with an exact 0: LCE keeps that conv as float CONV_2D; the audit must say so."""
    model = randomize_eval_state(tiny_reactnet(blocks=1, size=16))
    km = build_keras(model)
    layer = km.get_layer("blocks_0_conv1x1_0")
    w = layer.get_weights()[0]
    w[0, 0, 0, 0] = 0.0
    layer.set_weights([w])
    path = tmp_path / "bad.tflite"
    path.write_bytes(convert(km))
    sidecar_path(path).write_text(json.dumps({"burn_edge.arch": json.dumps(model.cfg.to_dict()),
                                           META_KIND: "lce"}))
    assert audit_cli.main([str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 1 binary conv(s) did not become LceBconv2d")
    assert "blocks.0.conv1x1.0 -> CONV_2D" in err[0]
    assert audit_cli.main([str(path), "--allow-float-fallback"]) == 0
    audit = json.loads(sidecar_path(path, AUDIT_SUFFIX).read_text())
    assert audit["float_fallbacks"] == ["blocks.0.conv1x1.0 -> CONV_2D"]


def test_cli_trained_checkpoint_agrees_in_all_kernels(trained_ckpt, digits_test, tmp_path, capsys):
    path, model = trained_ckpt
    out = tmp_path / "tiny.tflite"
    assert to_lce.main([str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    for stage in ("load", "build", "convert", "audit", "save"):
        assert f"✓ {stage}" in printed
    meta = json.loads(sidecar_path(out).read_text())
    assert meta[META_LAYOUT] == "NHWC" and meta[META_KIND] == "lce" and meta[META_SOURCE] == sha256_file(path)
    rep = json.loads(sidecar_path(out, AUDIT_SUFFIX).read_text())
    assert rep["ok"] and rep["n_lce_bconv"] == 6 and rep["n_float_conv"] == 1
    x, _ = digits_test
    ref = torch_out(model, x)
    flat = out.read_bytes()
    for kernel in LCE_KERNELS:
        got = lce_run(flat, x, kernel)
        assert (got.argmax(1) == ref.argmax(1)).all(), kernel
        assert rel_err(got, ref) <= 1e-3, kernel
    assert audit_cli.main([str(out)]) == 0


def test_cli_float_model_and_stage1_rule(trained_ckpt, digits_test, tmp_path, tiny_reactnet):
    path, model = trained_ckpt
    out = tmp_path / "tiny-float.tflite"
    assert to_lce.main([str(path), "-o", str(out), "--float", "--model-output", "features"]) == 0
    rep = json.loads(sidecar_path(out, AUDIT_SUFFIX).read_text())
    assert rep["kind"] == "tflite-float" and rep["n_lce_bconv"] == 0 and rep["n_float_conv"] == 7
    x, _ = digits_test
    assert rel_err(lce_run(out.read_bytes(), x[:32]), torch_out(model, x[:32], "features")) <= 1e-4
    with pytest.raises(ExportError, match="stage-1"):
        build_keras(tiny_reactnet(blocks=1, binary_weights=False).eval())


@pytest.mark.slow
def test_full_reactnet_a_224_both_ways(tmp_path):
    """The real thing: ReActNet-A at 224², random weights and BN statistics -> 31 LceBconv2d + 1 CONV_2D."""
    from export.onnx_graph import build_onnx
    from tests.export.helpers import ort_run

    torch.manual_seed(0)
    model = randomize_eval_state(reactnet_a())
    x = torch.randn(1, 3, 224, 224)
    ref = torch_out(model, x)
    assert rel_err(ort_run(build_onnx(model), x), ref) <= 1e-4
    report = audit_flatbuffer(convert(build_keras(model)), model)
    assert report.ok and report.n_lce_bconv == 31 and report.n_float_conv == 1
