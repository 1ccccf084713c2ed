"""The equivalence harness on small models: correct exports pass; broken ones fail at the right block."""

import contextlib
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from export import onnx_graph
from export.samples import load_inputs
from export.verify import (
    BUG,
    EXACT,
    FLIPS,
    NONFINITE,
    Tolerances,
    centred_cosine,
    chained_outputs,
    main,
    render,
    verify,
    wilson_interval,
)
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


def verdicts(rep, runtime="onnxruntime"):
    return {v.stage: v.verdict for v in rep.stages if v.runtime == runtime}


def bugs(rep, runtime="onnxruntime"):
    return [s for s, v in verdicts(rep, runtime).items() if v not in (EXACT, FLIPS)]


# ------------------------------------------------------------------------------------ metrics

def test_wilson_interval_hand_computed():
    lo, hi = wilson_interval(8, 8)  # z=1.96: centre (1 + z^2/16)/(1 + z^2/8), half z*sqrt(z^2/256)/(1 + z^2/8)
    assert lo == pytest.approx(0.6756, abs=1e-4) and hi == 1.0
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_centred_cosine_nan_is_not_one():
    a = np.array([[1.0, 2.0, 3.0]])
    assert centred_cosine(a, a) == pytest.approx(1.0)
    assert centred_cosine(a, a + 5) == pytest.approx(1.0)  # shift-invariant
    assert np.isnan(centred_cosine(a, np.full_like(a, np.nan)))


# ------------------------------------------------------------------------------------ verdicts

def test_correct_export_passes(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=4))
    rep = verify(model, digits16, runtimes=("onnxruntime",))
    assert rep.passed, render(rep)
    assert list(verdicts(rep)) == ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "pool", "head"]
    assert set(verdicts(rep).values()) == {EXACT}
    o = rep.outputs[0]
    assert o.top1 == 1.0 and o.top1_low == pytest.approx(wilson_interval(16, 16)[0]) and o.cosine > 0.9999


def test_wrong_padding_geometry_caught_at_every_stride2_block(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=4))
    assert [b.stride for b in model.blocks] == [1, 2, 1, 2]

    def tf_same(m, x, ctx, old):  # TF-SAME geometry (pad bottom/right only) on stride-2 convs
        if m.stride != 2:
            return old(m, x, ctx)
        signs, alpha = m.export_kernel()
        w = ctx.const("weight", (signs * alpha.reshape(-1, 1, 1, 1)).numpy())
        return ctx.op("Conv", [x, w], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])

    with override(onnx_graph.REGISTRY, BinaryConv2d, tf_same):
        rep = verify(model, digits16, runtimes=("onnxruntime",))
    assert not rep.passed
    assert bugs(rep) == ["blocks.1", "blocks.3"], render(rep)  # both, not only the first


def test_dropped_bn_caught_at_its_block_and_before_its_binariser(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=4))

    def drop(m, x, ctx, old):
        return x if ctx.path == "blocks.2.bn1" else old(m, x, ctx)

    with override(onnx_graph.REGISTRY, torch.nn.BatchNorm2d, drop):
        rep = verify(model, digits16, runtimes=("onnxruntime",))
    assert bugs(rep) == ["blocks.2"], render(rep)
    v = next(v for v in rep.stages if v.stage == "blocks.2")
    assert "bug before rsign2" in v.detail  # y (rsign2's input) already differs: localised inside the block


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
    assert bugs(rep) == ["blocks.1"], render(rep)
    v = next(v for v in rep.stages if v.stage == "blocks.1")
    assert v.exact_zero > 0 and "sign(0)" in v.detail


@pytest.mark.parametrize("max_flip_rate", [1e-3, 0.0])
def test_injected_near_zero_flip_is_explained_not_a_bug(tiny_reactnet, digits16, max_flip_rate):
    """A pre-sign value at exactly 0 that the runtime rounds across 0 is a near-zero flip, not a bug
    (unless flips are not allowed at all)."""
    from train.models.layers import RPReLU

    model = _randomise_bn(tiny_reactnet(blocks=2))
    x = digits16[:4]
    with torch.no_grad():
        blk = model.blocks[1]
        y = blk.trace(model.blocks[0](model.stem(x)))["y"]
        blk.rsign2.bias[0, 0, 0, 0] = -y[0, 0].max()  # pre-sign exactly 0 at a positive y in PyTorch: +1

    def nudge(m, x, ctx, old):  # the runtime's rprelu1 is 1e-6 relative low: that pre-sign value becomes < 0
        y = old(m, x, ctx)
        return ctx.op("Mul", [y, ctx.const("round", np.array(1 - 1e-6, np.float32))]) if \
            ctx.path == "blocks.1.rprelu1" else y

    with override(onnx_graph.REGISTRY, RPReLU, nudge):
        rep = verify(model, x, runtimes=("onnxruntime",), tol=Tolerances(max_flip_rate=max_flip_rate))
    v = next(v for v in rep.stages if v.stage == "blocks.1")
    assert v.flips >= 1 and v.max_rel > 1e-4 >= v.replay_rel, render(rep)
    if max_flip_rate:
        assert v.verdict == FLIPS and rep.passed, render(rep)
    else:
        assert v.verdict == BUG and "max_flip_rate" in v.detail and not rep.passed, render(rep)


def test_nonfinite_runtime_stage_named(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=3))

    def nan_bn(m, x, ctx, old):
        if ctx.path != "blocks.1.bn1":
            return old(m, x, ctx)
        return ctx.op("Div", [old(m, x, ctx), ctx.const("zero", np.array(0.0, np.float32))])  # +-inf / nan

    with override(onnx_graph.REGISTRY, torch.nn.BatchNorm2d, nan_bn):
        rep = verify(model, digits16[:4], runtimes=("onnxruntime",))
    assert not rep.passed
    assert verdicts(rep)["blocks.1"] in (NONFINITE, BUG) and bugs(rep) == ["blocks.1"], render(rep)
    assert any("non-finite" in f for f in rep.failures), render(rep)


def test_nan_model_fails_with_a_clear_message(tiny_reactnet, digits16, tmp_path, capsys):
    model = _randomise_bn(tiny_reactnet(blocks=2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    rep = verify(model, digits16[:4], runtimes=("onnxruntime",))
    assert not rep.passed and "non-finite from stage stem" in rep.failures[0]
    ck = save_checkpoint(tmp_path / "nan.pt", reactnet_payload(model))
    # the CLI loads through the one checkpoint validity check (train.checkpoint.check_model_values): refused
    assert main([str(ck), "--runtimes", "onnxruntime", "--limit", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "NaN/Inf" in err[0]


# ------------------------------------------------------------------------------------ isolated vs chained

@settings(max_examples=6, deadline=None)
@given(width=st.sampled_from([0.25, 0.5]), blocks=st.integers(1, 5), padding=st.sampled_from(["zero", "one"]),
       binary_weights=st.booleans(), seed=st.integers(0, 1000), broken=st.integers(-1, 4))
def test_isolated_and_chained_agree_where_no_flip(width, blocks, padding, binary_weights, seed, broken):
    """Random small architectures, optionally with one dropped BN: isolated verdicts and the chained
    (whole-network) per-stage errors agree on every stage up to the first flip (isolated, or in the chain)
    or bug, and a bug there is seen by both."""
    from train.models import reactnet_a

    torch.manual_seed(seed)
    size = 32 if blocks < 5 else 64
    model = _randomise_bn(reactnet_a(width=width, input_size=size, num_classes=7, num_blocks=blocks,
                                     padding=padding, binary_weights=binary_weights), seed)
    x = load_inputs("samples", size, INFO.mean, INFO.std, limit=4)[0]
    bad_path = f"blocks.{broken}.bn1" if 0 <= broken < blocks else None

    def drop(m, x, ctx, old):
        return x if ctx.path == bad_path else old(m, x, ctx)

    with override(onnx_graph.REGISTRY, torch.nn.BatchNorm2d, drop):
        rep = verify(model, x, runtimes=("onnxruntime",))
        stages = [n for n, _ in model.stages()]
        chained = chained_outputs(model, ("onnxruntime",), x.numpy(), stages)["onnxruntime"]
    with torch.no_grad():
        ref = dict(model.forward_stages(x))
    tol = rep.tolerances["block_rtol"]
    modules, prev = dict(model.stages()), None
    for stage in stages:
        v = next(v for v in rep.stages if v.stage == stage)
        r = ref[stage].numpy()
        if prev is not None and hasattr(modules[stage], "presign_points"):
            # Bits this block would see in the chain (its binarisers replayed on the chained input).
            with torch.no_grad():
                e_ref, e_chain = modules[stage].trace(ref[prev]), modules[stage].trace(torch.from_numpy(chained[prev]))
            if any(not torch.equal(e_ref[b], e_chain[b]) for b in ("b1", "b2")):
                break  # a flip in the chain: from here on chained and isolated may legitimately differ
        prev = stage
        chained_rel = float(np.abs(chained[stage] - r).max() / np.abs(r).max())
        if v.verdict == EXACT:
            assert chained_rel <= tol, (stage, chained_rel, render(rep))
            continue
        if v.verdict == BUG:
            assert chained_rel > tol, (stage, chained_rel, render(rep))
        break  # after the first flip or bug the chain has drifted: no claim
    assert (bad_path is None) == rep.passed or bad_path is not None, render(rep)
    if bad_path:
        assert bugs(rep) == [bad_path.rsplit(".", 1)[0]], render(rep)


# ------------------------------------------------------------------------------------ CLI

def test_cli_json_png_and_exit_codes(tmp_path, tiny_reactnet, capsys):
    model = _randomise_bn(tiny_reactnet(blocks=2))
    ck = save_checkpoint(tmp_path / "m.pt", reactnet_payload(model))
    rc = main([str(ck), "--runtimes", "onnxruntime", "--limit", "8", "--report", str(tmp_path / "r.json"),
               "--plot", str(tmp_path / "r.png")])
    assert rc == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["passed"] and len(rep["stages"]) == 5 and rep["outputs"][0]["top1_low"] > 0.6
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert "onnxruntime: 5 stages: 5 exact" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.pt")]) == 2


@pytest.mark.parametrize("extra,msg", [(["--limit", "0"], "--limit must be >= 1"),
                                       (["--onnx", "CORRUPT"], "not a readable ONNX model"),
                                       (["--onnx", "MISSING"], "no such file")])
def test_cli_bad_input_is_one_error_line(tmp_path, tiny_reactnet, capsys, extra, msg):
    ck = save_checkpoint(tmp_path / "m.pt", reactnet_payload(_randomise_bn(tiny_reactnet(blocks=1))))
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 50)
    extra = [str(tmp_path / "bad.onnx") if a == "CORRUPT" else str(tmp_path / "no.onnx") if a == "MISSING" else a
             for a in extra]
    assert main([str(ck), "--runtimes", "onnxruntime", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and msg in err[0], err


def test_stage1_checkpoint_rejected(tmp_path, tiny_reactnet, capsys):
    ck = save_checkpoint(tmp_path / "s1.pt", reactnet_payload(tiny_reactnet(binary_weights=False)))
    assert main([str(ck)]) == 2  # default runtimes include LCE
    assert "stage-1" in capsys.readouterr().err
    assert main([str(ck), "--runtimes", "onnxruntime", "--limit", "4", "--no-localise"]) == 0


def test_end_to_end_tolerances_are_options(tiny_reactnet, digits16):
    model = _randomise_bn(tiny_reactnet(blocks=2))
    assert verify(model, digits16, runtimes=("onnxruntime",), localise=False).passed
    rep = verify(model, digits16, runtimes=("onnxruntime",), localise=False, tol=Tolerances(logit_rtol=0.0))
    assert not rep.passed and "relative output error" in rep.failures[0]


# ------------------------------------------------------------------------------------ LCE

@pytest.mark.lce
def test_lce_all_kernels_and_broken_lce_export(tiny_reactnet, digits16):
    from export import lce

    model = _randomise_bn(tiny_reactnet(blocks=3))
    runtimes = ("lce-default", "lce-indirect", "lce-reference")
    rep = verify(model, digits16[:6], runtimes=runtimes)
    assert rep.passed, render(rep)
    assert {v.runtime for v in rep.stages} == set(runtimes) and len(rep.stages) == 3 * 6
    assert all(v.verdict == EXACT for v in rep.stages), render(rep)

    def drop(m, x, ctx, old):
        return x if ctx.path == "blocks.1.bn2.0" else old(m, x, ctx)

    with override(lce.REGISTRY, torch.nn.BatchNorm2d, drop):
        bad = verify(model, digits16[:6], runtimes=("lce-indirect",))
    assert bugs(bad, "lce-indirect") == ["blocks.1"], render(bad)


@pytest.mark.lce
def test_finds_lce_zero_padding_bug_on_2x2_maps(tiny_reactnet, digits16):
    """A real converter/kernel issue the harness found: LCE's optimised bconv kernels (default, indirect) get
    zero padding ('same-zero', corrected from same-one) wrong for a stride-1 3x3 conv on a 2x2 map, while
    the reference kernel is exact. At 32x32 input, blocks.6 is the first such conv; one-padding is exact."""
    model = _randomise_bn(tiny_reactnet(blocks=7, padding="zero"))
    rep = verify(model, digits16[:4], runtimes=("lce-default", "lce-reference"))
    assert bugs(rep, "lce-default") == ["blocks.6"], render(rep)
    assert bugs(rep, "lce-reference") == [], render(rep)
    one = _randomise_bn(tiny_reactnet(blocks=7, padding="one"))
    rep_one = verify(one, digits16[:4], runtimes=("lce-default",), localise=False)
    assert rep_one.passed and rep_one.outputs[0].max_rel < 1e-4, render(rep_one)


def test_official_zero_latent_weights_warn_but_export_is_consistent():
    """Official ReActNet's torch.sign maps a latent weight of exactly 0 to 0; burn-edge and LCE map it to
    +alpha. Verify says how many and where, and the export still matches burn-edge's PyTorch model."""
    from tests.export.helpers import edge_case_model

    model = edge_case_model()  # blocks.0.conv3x3 has exact-zero latent weights (and exact-zero pre-signs)
    x = load_inputs("samples", 16, INFO.mean, INFO.std, limit=4)[0]
    n = int((model.blocks[0].conv3x3.weight == 0).sum())
    rep = verify(model, x, runtimes=("onnxruntime",), official=True)
    assert rep.passed, render(rep)
    assert len(rep.warnings) == 1 and f"{n} latent binary weights are exactly 0" in rep.warnings[0]
    assert "blocks.0.conv3x3" in rep.warnings[0] and "self-consistent" in rep.warnings[0]
    assert "warning:" in render(rep)
    assert not verify(model, x, runtimes=("onnxruntime",)).warnings  # burn-edge checkpoints: no warning


@pytest.mark.lce
def test_cli_truncated_lce_is_one_error_line(tmp_path, tiny_reactnet, lce_model, capsys):
    ck = save_checkpoint(tmp_path / "m.pt", reactnet_payload(_randomise_bn(tiny_reactnet(blocks=1))))
    data = lce_model.read_bytes()
    (tmp_path / "half.tflite").write_bytes(data[: len(data) // 2])
    assert main([str(ck), "--runtimes", "lce-default", "--lce", str(tmp_path / "half.tflite"), "--limit", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "half.tflite" in err[0], err
