"""verify on the model users ship: full-size ReActNet-A (13 blocks, width 1) with random weights and
realistic BN statistics (``tests/realistic.py``) on real photos. The shipped ONNX and LCE files pass with
every stage judged on the file itself; the same files with one edited constant fail at that constant's block;
each deliberate converter breakage is named a real bug at its own block, even where the chained network has
long drifted.

Default suite: 128x128 input (the slowest part is the LCE conversion, which does not depend on the
resolution much; 128 keeps the last maps at 4x4, clear of LCE's 2x2 zero-padding issue). ``-m slow``
repeats everything at 224x224.
"""

import contextlib
import copy

import numpy as np
import pytest
import torch

from export import lce, onnx_graph
from export.samples import load_inputs
from export.verify import EXACT, FLIPS, RUNTIMES, STAGE_EXACT, chained_outputs, render, torch_stages, verify
from tests.export.helpers import corrupt_onnx_initializer, corrupt_tflite_constant
from train.data import IMAGENET_MEAN, IMAGENET_STD
from train.models.layers import BinaryConv2d, RSign

pytestmark = pytest.mark.lce
N_IMAGES = 8


@pytest.fixture(scope="module", params=[128, pytest.param(224, marks=pytest.mark.slow)], ids=lambda s: f"{s}px")
def full(request, realistic_model):
    size = request.param
    model = realistic_model(size)
    x = load_inputs("samples", size, IMAGENET_MEAN, IMAGENET_STD, limit=N_IMAGES)[0]
    return model, x


@contextlib.contextmanager
def override(registry, module_type, fn):
    old = registry._fns[module_type]
    registry._fns[module_type] = lambda m, x, ctx: fn(m, x, ctx, old)
    try:
        yield
    finally:
        registry._fns[module_type] = old


def bugs(rep, runtime):
    return [v.stage for v in rep.stages if v.runtime == runtime and v.verdict not in (EXACT, FLIPS)]


def first_chained_divergence(model, x, tol=1e-4) -> int:
    """Index of the first stage whose chained (whole-network) ONNX output differs from PyTorch by > tol."""
    stages = [n for n, _ in model.stages()]
    got = chained_outputs(model, ("onnxruntime",), x.numpy(), stages)["onnxruntime"]
    _, ref = torch_stages(model, x)
    for i, s in enumerate(stages):
        r = ref[s].numpy()
        if np.abs(got[s] - r).max() / np.abs(r).max() > tol:
            return i
    return len(stages)


@pytest.fixture(scope="module")
def shipped(full, tmp_path_factory):
    """The ONNX and LCE files the exporters write for the full model (one LCE conversion, shared)."""
    model, _ = full
    d = tmp_path_factory.mktemp("shipped")
    (d / "m.onnx").write_bytes(onnx_graph.build_onnx(model).SerializeToString())
    (d / "m.tflite").write_bytes(lce.convert(lce.build_keras(model)))
    return d / "m.onnx", d / "m.tflite"


def test_shipped_files_pass_stage_exact(full, shipped):
    model, x = full
    rep = verify(model, x, runtimes=RUNTIMES, images="samples", onnx_path=shipped[0], lce_path=shipped[1])
    assert rep.passed, render(rep)
    assert [f.guarantee for f in rep.files] == [STAGE_EXACT, STAGE_EXACT], render(rep)
    assert {v.verdict for v in rep.stages} <= {EXACT, FLIPS} and len(rep.stages) == 4 * 16
    # The chained network has drifted by the end (bits flipped somewhere upstream), yet every stage passes.
    assert max(o.max_rel for o in rep.outputs) > 1e-4, render(rep)


def test_shipped_onnx_with_a_corrupted_bn_initializer_fails_at_its_block(full, shipped, tmp_path):
    model, x = full
    bad, name = corrupt_onnx_initializer(shipped[0].read_bytes(), "blocks/11/bn1/")
    (tmp_path / "bad.onnx").write_bytes(bad)
    rep = verify(model, x, runtimes=("onnxruntime",), images="samples", onnx_path=tmp_path / "bad.onnx")
    assert bugs(rep, "onnxruntime") == ["blocks.11"], render(rep)
    assert not rep.passed and not rep.files[0].passed


def test_shipped_lce_with_a_corrupted_multiplier_fails_at_its_block(full, shipped, tmp_path):
    model, x = full
    bad, out = corrupt_tflite_constant(shipped[1].read_bytes(), "LceBconv2d", "blocks_9_bn2_0", input_index=2,
                                       channel=3)
    (tmp_path / "bad.tflite").write_bytes(bad)
    rep = verify(model, x[:4], runtimes=("lce-indirect",), images="samples", lce_path=tmp_path / "bad.tflite")
    assert bugs(rep, "lce-indirect") == ["blocks.9"], render(rep)
    assert not rep.passed


def test_broken_onnx_bn_constant_and_sign0_named_at_their_blocks(full):
    """Two ONNX bugs at once: a quarter of blocks.11.bn1's gamma multiplied by -3, and Sign(0) = 0 where
    blocks.4's first binariser sees an exact 0. Both are named; every other stage passes."""
    model, x = full
    model = copy.deepcopy(model)
    ins, _ = torch_stages(model, x)
    with torch.no_grad():  # one pre-sign value exactly 0 at blocks.4.rsign1: x + b == 0
        model.blocks[4].rsign1.bias[0, 0, 0, 0] = -ins["blocks.4"][0, 0, 5, 5]
    # How far the chained network has drifted before blocks.11 depends on the torch/onnxruntime build (with
    # torch 2.14 here the chained ONNX output stays within 1e-6 of PyTorch at 128px through every stage), so
    # it is reported, not asserted; the verdicts below must hold either way.
    print("first chained stage beyond 1e-4:", first_chained_divergence(model, x))

    def corrupt_bn(m, x, ctx, old):
        if ctx.path != "blocks.11.bn1":
            return old(m, x, ctx)
        m = copy.deepcopy(m)
        with torch.no_grad():
            m.weight[: m.num_features // 4] *= -3
        return old(m, x, ctx)

    def sign0(m, x, ctx, old):  # the classic trap: ONNX Sign(0) = 0
        t = ctx.const("threshold", m.threshold().numpy().reshape(1, -1, 1, 1))
        return ctx.op("Sign", [ctx.op("Sub", [x, t])])

    with override(onnx_graph.REGISTRY, torch.nn.BatchNorm2d, corrupt_bn), \
            override(onnx_graph.REGISTRY, RSign, sign0):
        rep = verify(model, x, runtimes=("onnxruntime",), images="samples", end_to_end=False)
    assert bugs(rep, "onnxruntime") == ["blocks.4", "blocks.11"], render(rep)
    b4 = next(v for v in rep.stages if v.stage == "blocks.4")
    assert b4.exact_zero >= 1 and "sign(0)" in b4.detail, render(rep)


def test_broken_lce_dropped_bn_and_tf_padding_named_at_their_blocks(full):
    """Two LCE bugs at once: blocks.9.bn2.0 dropped, and TF-style SAME padding (bottom/right) in the
    stride-2 3x3 conv of blocks.11. Both are named; every other stage passes."""
    from export.lce import FlipHW

    model, x = full
    assert model.blocks[11].stride == 2

    def drop(m, x, ctx, old):
        return x if ctx.path == "blocks.9.bn2.0" else old(m, x, ctx)

    def tf_padding(m, x, ctx, old):
        if ctx.path != "blocks.11.conv3x3":
            return old(m, x, ctx)
        # The converter stores kernels flipped for the flip trick; feeding it a pre-flipped kernel and
        # unflipped maps gives TF's SAME geometry (pad bottom/right) with the right kernel.
        tf_style = copy.deepcopy(m)
        with torch.no_grad():
            tf_style.weight.copy_(m.weight.flip(2, 3))
        unflipped = FlipHW(name=ctx.name("unflip_in"))(x)
        return FlipHW(name=ctx.name("unflip_out"))(old(tf_style, unflipped, ctx))

    with override(lce.REGISTRY, torch.nn.BatchNorm2d, drop), override(lce.REGISTRY, BinaryConv2d, tf_padding):
        rep = verify(model, x[:4], runtimes=("lce-indirect",), images="samples", end_to_end=False)
    assert bugs(rep, "lce-indirect") == ["blocks.9", "blocks.11"], render(rep)
