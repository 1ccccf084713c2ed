"""runtimes.arm: the per-layer aarch64 kernel dispatch table, and the emulated lane (LCE's aarch64 kernels under
qemu) on a tiny exported ReActNet-A: equivalence verdicts, planted mismatches caught, deterministic counts.

The lane tests need qemu-user, g++-aarch64-linux-gnu and the upstream sources (``.ci/run`` installs the
packages; the sources are ../shared/third_party or $BURN_EDGE_LCE_SOURCE); without them they skip, naming
what is missing. The cross-built driver is cached (~/.cache/burn-edge/arm-lane/<hash>): the first run builds
it (~1 min on 2 shared cores), later runs reuse it.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from runtimes import arm, bench
from runtimes.arm_lane import build as lane_build
from runtimes.arm_lane import float_twin as ft

pytestmark = pytest.mark.lce


def _op(in_hw, cin, cout, k=3, out_type="float32"):
    return SimpleNamespace(index=0, input_shapes=[[1, in_hw, in_hw, (cin + 31) // 32], [cout, k, k, (cin + 31) // 32]],
                           output_shapes=[[1, in_hw, in_hw, cout]], output_types=[out_type],
                           options={"channels_in": cin, "stride_height": 1})


def test_dispatch_matches_lce_conditions():
    assert arm.layer_dispatch(_op(16, 64, 64))["indirect"] == "neon"          # 32*16*16*2 = 16384
    r = arm.layer_dispatch(_op(32, 64, 64))                                    # 32*32*32*2 = 65536
    assert r["indirect"] == "portable" and "65536" in r["indirect_fallback_reason"]
    assert arm.layer_dispatch(_op(32, 64, 64))["default"] == "neon (int16 acc)"
    assert arm.layer_dispatch(_op(7, 8192, 64))["default"] == "neon (int32 acc)"


def test_cli_error_line(lce_model, tmp_path, capsys):
    assert arm.main([str(tmp_path / "none.tflite")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert arm.main([str(lce_model), "--image", "no_such_photo"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: --image 'no_such_photo'") and not captured.out


def test_missing_prerequisites_named_for_every_layer(lce_model, tmp_path, capsys):
    """A source folder without the sources: every layer says why it was not run; --require-lane exits 2."""
    out = tmp_path / "arm.json"
    assert arm.main([str(lce_model), "--lce-source", str(tmp_path), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines() if ln.startswith("ARM lane, op")]
    assert lines and all("not run:" in ln and str(tmp_path) in ln for ln in lines)
    assert json.loads(out.read_text())["lane"]["unavailable"]
    assert arm.main([str(lce_model), "--lce-source", str(tmp_path), "--require-lane"]) == 2


# ------------------------------------------------------------------------------------------ the lane

def _need_lane():
    reasons = lane_build.missing()
    if reasons:
        pytest.skip("ARM lane unavailable: " + "; ".join(reasons))
    return lane_build.build()


@pytest.fixture(scope="module")
def lane():
    return _need_lane()


@pytest.fixture(scope="module")
def tiny_reactnet_lce(tmp_path_factory):
    """A 3-block ReActNet-A (width 0.5, 32 px; realistic random state) exported to LCE like export.to_lce:
    same-zero 3x3 (stride 1 and 2) and 1x1 bconvs, 16..64 channels (bitpacking with and without padding bits)."""
    pytest.importorskip("larq_compute_engine")
    from export.common import make_metadata
    from export.lce import build_keras, convert
    from runtimes.format import sidecar_path
    from tests.realistic import realistic_reactnet
    from train.data import IMAGENET_MEAN, IMAGENET_STD

    model = realistic_reactnet(32, 0, width=0.5, num_blocks=3, num_classes=10)
    path = tmp_path_factory.mktemp("arm") / "tiny_reactnet.tflite"
    path.write_bytes(convert(build_keras(model)))
    meta = make_metadata(model, output="logits", layout="NHWC", kind="lce", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    sidecar_path(path).write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def tiny_layers(tiny_reactnet_lce):
    from runtimes.arm_lane.layers import extract_layers

    return extract_layers(tiny_reactnet_lce, arm.load_image("chelsea", tiny_reactnet_lce))


@pytest.fixture(scope="module")
def tiny_lane_run(lane, tiny_reactnet_lce, tmp_path_factory):
    """The documented command on the tiny ReActNet-A, run once for this module: (printed text, its --json)."""
    import contextlib
    import io

    out, buf = tmp_path_factory.mktemp("arm_run") / "arm.json", io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert arm.main([str(tiny_reactnet_lce), "--json", str(out)]) == 0
    return buf.getvalue(), json.loads(out.read_text())


def test_lane_tiny_reactnet_all_layers_agree(tiny_lane_run):
    """The documented command: every bconv passes on both paths, and the kernel that ran on aarch64 is the one
    the source-derived dispatch table predicts."""
    text, report = tiny_lane_run
    rows, predicted = report["lane"]["layers"], {r["op"]: r for r in report["dispatch"]}
    assert len(rows) == len(predicted) >= 7 and all(r["ok"] for r in rows)
    for r in rows:
        assert set(r["checks"]) >= {"acc-bgemm", "bgemm", "acc-indirect", "indirect"}
        assert r["bgemm"]["insns"] > 0 and r["indirect"]["insns"] > 0
        assert r["indirect"]["neon"] == (predicted[r["op"]]["indirect"] == "neon")
        assert r["bgemm"]["neon"] == predicted[r["op"]]["default"].startswith("neon")
    assert sum("bitpack" in r["checks"] for r in rows) >= 5  # LceQuantize-fed layers
    assert "PASS" in text and "aarch64 instructions executed" in text
    why = ft.missing()  # the float twin runs when its aarch64 Python is there (.ci/run makes it), else says why
    if why is None:
        assert all(r["float_conv_insns"] > 0 for r in rows) and "float / LCE default" in text
    else:
        assert f"not run: {why}" in text and report["lane"]["float_twin"] == why


def test_bench_arm_table_after_the_latency_table(lane, lce_model, tmp_path, capsys):
    """runtimes.bench --arm: the host latency table, then the lane's verdict and cost tables for the LCE model
    (one bconv: ~5 s of qemu); the float twin pointed at an empty folder says why it did not run."""
    js, nowhere = tmp_path / "b.json", tmp_path / "no_python"
    assert bench.main([str(lce_model), "--threads", "1", "--runs", "2", "--warmup", "1", "--no-memory", "--kernels",
                       "default", "--arm", "--aarch64-python", str(nowhere), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert out.index("median ms") < out.index("ARM (aarch64) lane for tiny_lce.tflite") < out.index("1/1 layers agree")
    assert "neon ruy kNeon int16-accumulator BGEMM" in out and "aarch64 instructions executed" in out
    assert f"not run: no aarch64 Python at {nowhere}" in out
    rep = json.loads(js.read_text())["arm"][0]
    layer = rep["lane"]["layers"][0]
    assert rep["model"] == str(lce_model) and layer["ok"] and layer["bgemm"]["neon"]


def test_bench_arm_says_why_for_every_layer(lce_model, float_tflite_model, tmp_path, capsys):
    """Without the sources each layer of the --arm table says why it was not run (host table still there);
    --arm's options without --arm, or --arm without an LCE model, are one error line."""
    empty = tmp_path / "empty"
    empty.mkdir()
    js = tmp_path / "b.json"
    assert bench.main([str(lce_model), "--threads", "1", "--runs", "2", "--warmup", "1", "--no-memory", "--kernels",
                       "default", "--arm", "--lce-source", str(empty), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("ARM lane, op")]
    assert "median ms" in out and len(lines) == len(arm.dispatch_table(lce_model)) == 1
    assert all(f"not run: {empty}/larq_compute_engine/" in ln and "get the sources" in ln for ln in lines)
    assert json.loads(js.read_text())["arm"][0]["lane"]["unavailable"][0].startswith(str(empty))
    assert bench.main([str(lce_model), "--arm-float-model", str(lce_model)]) == 2
    assert capsys.readouterr().err.startswith("error: --arm-float-model needs --arm")
    assert bench.main([str(float_tflite_model), "--arm"]) == 2
    assert capsys.readouterr().err.startswith("error: --arm needs an LCE .tflite model")


def test_instruction_counts_identical_across_runs(lane, tiny_layers, tmp_path):
    from runtimes.arm_lane.lane import run_layer

    layer = tiny_layers[0]
    a = run_layer(layer, lane["aarch64"], lane["plugin"], tmp_path)
    b = run_layer(layer, lane["aarch64"], lane["plugin"], tmp_path)
    for mode in ("bgemm", "indirect", "bitpack"):
        assert a.runs[mode].insns == b.runs[mode].insns and a.runs[mode].insns.get(1 if mode != "bitpack" else 3)


def test_planted_input_mismatch_caught(lane, tiny_layers, tmp_path):
    """One flipped bit in the bitpacked input the kernels get (the x86 tensors unchanged): bitpacking and both
    outputs disagree with the x86 interpreter."""
    from runtimes.arm_lane.lane import run_layer

    layer = next(x for x in tiny_layers if x.float_input is not None)
    planted = _copy(layer)
    planted.input = layer.input.copy()
    planted.input.flat[len(planted.input.flat) // 2] ^= 1 << 3
    r = run_layer(planted, lane["aarch64"], lane["plugin"], tmp_path)
    assert not r.ok
    assert not r.checks["bitpack"]["ok"] and not r.checks["bgemm"]["ok"] and not r.checks["indirect"]["ok"]


def test_planted_output_mismatch_caught(lane, tiny_layers, tmp_path):
    """The x86 reference off by 3 ulps at one element fails the 2-ulp gate; off by 1 ulp passes."""
    from runtimes.arm_lane.lane import run_layer

    layer = tiny_layers[1]
    for ulps, ok in ((3, False), (1, True)):
        planted = _copy(layer)
        planted.output = layer.output.copy()
        i = int(np.argmax(np.abs(planted.output)))  # a large value: its ulp is the terms' ulp
        bits = planted.output.reshape(-1)[i:i + 1].view(np.int32)
        bits += ulps
        r = run_layer(planted, lane["aarch64"], lane["plugin"], tmp_path, paths=("bgemm",))
        assert r.checks["bgemm"]["ok"] is ok, r.checks["bgemm"]["detail"]


@pytest.fixture(scope="module")
def bitpacked_lce(tmp_path_factory):
    """bconv -> BN -> sign -> bconv (larq, same-one padding): LCE writes the first bconv's output bitpacked
    (int32, per-channel thresholds), for which the indirect path has only its portable kernel."""
    pytest.importorskip("larq_compute_engine")
    import larq as lq
    from larq_compute_engine import convert_keras_model

    from tests.runtimes.tiny_models import _keras

    keras = _keras()
    keras.utils.set_random_seed(0)
    q = dict(padding="same", pad_values=1.0, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
             kernel_constraint="weight_clip", use_bias=False)
    x = keras.Input((12, 12, 3), batch_size=1)
    y = keras.layers.Conv2D(32, 3, padding="same")(x)
    y = keras.layers.BatchNormalization(beta_initializer="random_uniform")(lq.layers.QuantConv2D(64, 3, **q)(y))
    y = lq.layers.QuantConv2D(32, 3, **q)(y)
    y = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(y))
    path = tmp_path_factory.mktemp("arm_bitpacked") / "bitpacked.tflite"
    path.write_bytes(convert_keras_model(keras.Model(x, y)))
    return path


def test_lane_bitpacked_output_and_portable_fallback_flagged(lane, bitpacked_lce, capsys):
    assert arm.main([str(bitpacked_lce), "--no-float-twin", "--float-model", str(bitpacked_lce)]) == 0
    text = capsys.readouterr().out
    assert "3x3 12x12x32->64" in text and "PORTABLE FALLBACK" in text and "Kernel4x2Portable<int>" in text
    assert "2/2 layers agree" in text
    assert "float twin (float CONV_2D per layer, aarch64 tflite-runtime + XNNPACK): not run: " in text
    assert "whole model: not run: " in text


def test_float_twin_counts(lane, tiny_layers, tiny_lane_run):
    """The float twin: each bconv shape as a float CONV_2D on the aarch64 tflite-runtime wheel (XNNPACK) under
    qemu; counts positive and identical when counted again (same models, same guest command line: a guest run
    with other models in it can differ by a few instructions) as in the module's lane run. Needs the aarch64
    Python folder (~/.cache/burn-edge/aarch64-python or $BURN_EDGE_AARCH64_PYTHON, made by
    runtimes/arm_lane/aarch64_python.sh, which .ci/run runs); skips naming it otherwise. (The whole-model
    count is tested by tests/pipeline/test_pipeline.py::test_arm_phase_and_report_section.)"""
    why = ft.missing()
    if why:
        pytest.skip("float twin unavailable: " + why)
    counts = ft.count_float_convs(tiny_layers, lane["plugin"])
    in_run = {r["op"]: r["float_conv_insns"] for r in tiny_lane_run[1]["lane"]["layers"]}
    assert len(counts) == len({ft.shape_key(x) for x in tiny_layers}) and min(counts.values()) > 10_000
    assert [counts[ft.shape_key(x)] for x in tiny_layers] == [in_run[x.op] for x in tiny_layers]


def _copy(layer):
    from dataclasses import replace

    return replace(layer)


@pytest.mark.slow
def test_lane_full_reactnet_224(lane, realistic_model, tmp_path):
    """Full ReActNet-A at 224 px (realistic random state): all 31 bconvs agree on both aarch64 paths
    (~1 min of qemu on 2 shared cores, plus ~2 min of export)."""
    from export.common import make_metadata
    from export.lce import build_keras, convert
    from runtimes.format import sidecar_path
    from train.data import IMAGENET_MEAN, IMAGENET_STD

    model = realistic_model(224)
    path = tmp_path / "reactnet224.tflite"
    path.write_bytes(convert(build_keras(model)))
    meta = make_metadata(model, output="logits", layout="NHWC", kind="lce", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    sidecar_path(path).write_text(json.dumps(meta))
    out = tmp_path / "arm.json"
    assert arm.main([str(path), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["lane"]["layers"]
    assert len(rows) == 31 and all(r["ok"] for r in rows)
    assert all(r["bgemm"]["neon"] for r in rows)  # the default path keeps NEON on every layer
