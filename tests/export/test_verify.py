"""The equivalence harness: correct exports pass; deliberately broken ones fail at the right block."""

import contextlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from export import onnx_graph
from export.samples import load_inputs
from export.verify import Tolerances, main, render, verify
from train.checkpoint import reactnet_payload, save_checkpoint
from train.data import dataset_info
from train.models.layers import BinaryConv2d, RSign

INFO = dataset_info("digits")


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def digits16():
    return load_inputs("digits", 32, INFO.mean, INFO.std, limit=16)[0]


@contextlib.contextmanager
def override(registry, module_type, fn):
    """Temporarily replace one converter (a deliberately broken export)."""
    old = registry._fns[module_type]

    def patched(m, x, ctx):
        return fn(m, x, ctx, old)

    registry._fns[module_type] = patched
    try:
        yield
    finally:
        registry._fns[module_type] = old


def test_correct_export_passes(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=4))
    rep = verify(model, digits16, runtimes=("onnxruntime",))
    assert rep.passed, render(rep)
    assert not rep.first_divergence
    assert [b.stage for b in rep.blocks] == ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3"]
    assert all(b.flips == 0 for b in rep.blocks)


def test_wrong_padding_geometry_caught_at_first_stride2_block(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=4))
    assert model.blocks[1].stride == 2 and model.blocks[0].stride == 1

    def tf_same(m, x, ctx, old):  # TF-SAME geometry (pad bottom/right only) on stride-2 convs
        if m.stride != 2:
            return old(m, x, ctx)
        signs, alpha = m.export_kernel()
        w = ctx.const("weight", (signs * alpha.reshape(-1, 1, 1, 1)).numpy())
        return ctx.op("Conv", [x, w], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])

    with override(onnx_graph.REGISTRY, BinaryConv2d, tf_same):
        rep = verify(model, digits16, runtimes=("onnxruntime",))
    assert not rep.passed
    fd = rep.first_divergence["onnxruntime"]
    assert fd["stage"] == "blocks.1", render(rep)
    assert fd["explanation"].startswith("real bug")


def test_dropped_bn_caught_at_its_block(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=4))

    def drop(m, x, ctx, old):
        return x if ctx.path == "blocks.2.bn1" else old(m, x, ctx)

    with override(onnx_graph.REGISTRY, torch.nn.BatchNorm2d, drop):
        rep = verify(model, digits16, runtimes=("onnxruntime",))
    assert not rep.passed
    assert rep.first_divergence["onnxruntime"]["stage"] == "blocks.2"
    assert rep.first_divergence["onnxruntime"]["explanation"].startswith("real bug")


def test_sign_zero_convention_caught(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=4))
    with torch.no_grad():  # make block 1's binariser see exact zeros on half its channels
        c = model.blocks[0].out_channels // 2
        model.blocks[0].rprelu2.prelu.weight[:c] = 0.0
        model.blocks[0].rprelu2.bias_out[:, :c] = 0.0
        model.blocks[0].rprelu2.bias_in[:, :c] = -50.0  # prelu input negative -> output exactly 0
        model.blocks[1].rsign1.bias.zero_()

    def onnx_sign(m, x, ctx, old):  # the classic trap: Sign(0) = 0
        t = ctx.const("threshold", m.threshold().numpy().reshape(1, -1, 1, 1))
        return ctx.op("Sign", [ctx.op("Sub", [x, t])])

    with override(onnx_graph.REGISTRY, RSign, onnx_sign):
        rep = verify(model, digits16, runtimes=("onnxruntime",))
    assert not rep.passed
    fd = rep.first_divergence["onnxruntime"]
    assert fd["stage"] == "blocks.1" and "sign(0)" in fd["explanation"], render(rep)


@settings(max_examples=8, deadline=None)
@given(width=st.sampled_from([0.25, 0.5]), blocks=st.integers(1, 5), padding=st.sampled_from(["zero", "one"]),
       binary_weights=st.booleans(), seed=st.integers(0, 1000))
def test_random_architectures_onnx(width, blocks, padding, binary_weights, seed):
    from train.models import reactnet_a

    torch.manual_seed(seed)
    size = 32 if blocks < 5 else 64
    model = _randomise_bn(reactnet_a(width=width, input_size=size, num_classes=7, num_blocks=blocks,
                                     padding=padding, binary_weights=binary_weights), seed)
    x = load_inputs("samples", size, INFO.mean, INFO.std, limit=4)[0]
    rep = verify(model, x, runtimes=("onnxruntime",))
    assert rep.passed, render(rep)


def test_cli_json_png_and_exit_codes(tmp_path, tiny_reactnet):
    model = _randomise_bn(tiny_reactnet(blocks=2))
    ck = save_checkpoint(tmp_path / "m.pt", reactnet_payload(model))
    rc = main([str(ck), "--runtimes", "onnxruntime", "--limit", "8", "--report", str(tmp_path / "r.json"),
               "--plot", str(tmp_path / "r.png")])
    assert rc == 0
    import json

    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["passed"] and len(rep["blocks"]) == 3
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert main([str(tmp_path / "missing.pt")]) == 2


def test_stage1_checkpoint_rejected(tmp_path, tiny_reactnet, capsys):
    ck = save_checkpoint(tmp_path / "s1.pt", reactnet_payload(tiny_reactnet(binary_weights=False)))
    assert main([str(ck)]) == 2  # default runtimes include LCE
    assert "stage-1" in capsys.readouterr().err
    assert main([str(ck), "--runtimes", "onnxruntime", "--limit", "4", "--no-localise"]) == 0


def test_tolerances_are_enforced(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=2))
    rep = verify(model, digits16, runtimes=("onnxruntime",), tol=Tolerances(logit_rtol=0.0, block_rtol=0.0))
    # Every float rounding difference now counts: the stem already diverges and the gate fails.
    assert rep.blocks[0].max_rel > 0
    assert rep.first_divergence["onnxruntime"]["stage"] == "stem"
    assert not rep.passed and "relative output error" in rep.failures[0]


@pytest.mark.lce
def test_lce_all_kernels_and_broken_lce_export(tiny_reactnet, digits16):
    from export import lce

    model = _randomise_bn(tiny_reactnet(blocks=3))
    runtimes = ("lce-default", "lce-indirect", "lce-reference")
    rep = verify(model, digits16[:6], runtimes=runtimes)
    assert rep.passed, render(rep)
    assert {b.runtime for b in rep.blocks} == set(runtimes) and len(rep.blocks) == 3 * 4
    assert all(b.max_rel < 1e-4 for b in rep.blocks)

    def drop(m, x, ctx, old):
        return x if ctx.path == "blocks.1.bn2.0" else old(m, x, ctx)

    with override(lce.REGISTRY, torch.nn.BatchNorm2d, drop):
        bad = verify(model, digits16[:6], runtimes=("lce-indirect",))
    assert not bad.passed
    fd = bad.first_divergence["lce-indirect"]
    assert fd["stage"] == "blocks.1" and fd["explanation"].startswith("real bug"), render(bad)


@pytest.mark.lce
def test_finds_lce_zero_padding_bug_on_2x2_maps(tiny_reactnet, digits16):
    """A real converter/kernel issue the harness found: LCE's optimised bconv kernels (default, indirect) get
    zero padding ('same-zero', corrected from same-one) wrong for a stride-1 3x3 conv on a 2x2 map, while
    the reference kernel is exact. At 32x32 input, blocks.6 is the first such conv; one-padding is exact."""
    model = _randomise_bn(tiny_reactnet(blocks=7, padding="zero"))
    rep = verify(model, digits16[:4], runtimes=("lce-default", "lce-reference"))
    fd = rep.first_divergence.get("lce-default")
    assert fd and fd["stage"] == "blocks.6" and fd["explanation"].startswith("real bug"), render(rep)
    assert "lce-reference" not in rep.first_divergence, render(rep)
    one = _randomise_bn(tiny_reactnet(blocks=7, padding="one"))
    rep_one = verify(one, digits16[:4], runtimes=("lce-default",), localise=False)
    assert rep_one.passed and rep_one.outputs[0].max_rel < 1e-4, render(rep_one)
