"""Stage tolerances from the computation itself: PyTorch float32's own error against float64 (same bits)."""

import math

import pytest
import torch

from common.errors import ConfigError
from export.onnx_graph import build_onnx
from export.samples import load_inputs
from export.verify import BUG, EXACT, FLIPS, STAGE_EXACT, Tolerances, main, render, stage_yardsticks, verify
from tests.export.helpers import corrupt_onnx_initializer
from train.checkpoint import reactnet_payload, save_checkpoint
from train.data import dataset_info

INFO = dataset_info("digits")


def _model(tiny_reactnet, badly_conditioned: bool):
    model = tiny_reactnet(blocks=4)
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    if badly_conditioned:  # blocks.2: a BN that adds a large bias the next op cancels (float32 rounds at 3e4)
        b = model.blocks[2]
        with torch.no_grad():
            for bn in b.bn2:
                bn.weight.fill_(1e-2)
                bn.bias.fill_(3e4)
            b.rprelu2.bias_in.fill_(-3e4)
    return model.eval()


@pytest.fixture(scope="module")
def digits16():
    return load_inputs("digits", 32, INFO.mean, INFO.std, limit=16)[0]


def test_yardstick_measures_conditioning(tiny_reactnet, digits16):
    good = _model(tiny_reactnet, False)
    bad = _model(tiny_reactnet, True)
    x = digits16
    for name, m in good.stages():
        y = m(x)
        if name == "blocks.2":
            yard_good = stage_yardsticks(m, x, y, m.trace(x))
            mb = dict(bad.stages())[name]
            yard_bad = stage_yardsticks(mb, x, mb(x), mb.trace(x))
            break
        x = y
    assert 0 < yard_good["out"] < 1e-5 and set(yard_good) == {"out", "y"}
    assert yard_bad["out"] > 30 * yard_good["out"], (yard_good, yard_bad)


def test_badly_conditioned_stage_passes_when_correct_and_fails_when_corrupted(tiny_reactnet, digits16, tmp_path):
    """On the shipped file: the correct export passes, the same file with a quarter of one BN's scale times
    -3 (an edited initializer, written back) is a real bug at that stage and nowhere else."""
    model = _model(tiny_reactnet, True)
    good = tmp_path / "good.onnx"
    good.write_bytes(build_onnx(model).SerializeToString())
    rep = verify(model, digits16, runtimes=("onnxruntime",), onnx_path=good)
    assert rep.passed and rep.files[0].guarantee == STAGE_EXACT, render(rep)
    v = next(v for v in rep.stages if v.stage == "blocks.2")
    assert v.verdict in (EXACT, FLIPS) and v.yardstick > Tolerances().block_rtol
    assert v.max_rel > Tolerances().block_rtol  # a fixed tolerance would have called this correct export a bug
    assert "fp32 own" in render(rep)

    bad, name = corrupt_onnx_initializer(good.read_bytes(), "blocks/2/bn2/0/gamma")
    (tmp_path / "bad.onnx").write_bytes(bad)
    rep = verify(model, digits16, runtimes=("onnxruntime",), onnx_path=tmp_path / "bad.onnx")
    assert [v.stage for v in rep.stages if v.verdict not in (EXACT, FLIPS)] == ["blocks.2"], render(rep)
    assert next(v for v in rep.stages if v.stage == "blocks.2").verdict == BUG


@pytest.mark.parametrize("flag", ["--block-rtol", "--max-flip-rate", "--rounding-factor", "--min-top1"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_gate_options_cannot_switch_the_gate_off(tiny_reactnet, tmp_path, capsys, flag, value):
    ck = tmp_path / "m.pt"
    if not ck.exists():
        save_checkpoint(ck, reactnet_payload(_model(tiny_reactnet, False)))
    assert main([str(ck), "--runtimes", "onnxruntime", "--limit", "2", flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {flag} must be a finite number"), err


def test_tolerances_validate_in_the_api():
    with pytest.raises(ConfigError, match="max-flip-rate"):
        Tolerances(max_flip_rate=math.nan).validate()
    Tolerances().validate()
