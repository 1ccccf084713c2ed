"""The official BURN linear evaluation retrains the backbone FC(C,C)+ReLU (protocol linear-fc), and the fast
probe says which features it reads."""

import pytest
import torch

from common.errors import ConfigError
from train import evaluate as ev
from train.checkpoint import reactnet_payload, save_checkpoint
from train.models import reactnet_a


def _ckpt(path, feature_mlp):
    torch.manual_seed(0)
    m = reactnet_a(width=0.25, input_size=32, num_classes=16, num_blocks=2, head_hidden=32, feature_mlp=feature_mlp)
    return save_checkpoint(path, reactnet_payload(m, method="burn", stage=1, config={"dataset": "digits"})), m


def test_linear_fc_retrains_a_copy_of_the_fc(tmp_path, capsys):
    path, m = _ckpt(tmp_path / "fc.pt", True)
    res = ev.evaluate(str(path), ["linear-fc"], ev.EvalConfig(linear_paper_epochs=2))
    # a log file (no terminal) sees the epochs go by: 2 epochs -> a line at epoch 1
    assert "evaluate: linear (paper) epoch 1/2" in capsys.readouterr().out
    assert 0.0 <= res["linear-fc"]["top1"] <= res["linear-fc"]["top5"] <= 1.0
    c = m.cfg.feature_dim()
    assert f"FC({c},{c})+ReLU" in res["features"] and "post-ReLU" in res["features"]
    assert res["features"] in ev.format_result(res)
    # the pooled features the retrained FC reads are the pre-FC ones
    backbone, _ = ev.load_backbone(str(path))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pooled = ev._Pooled(backbone.model.eval())(x)
        assert torch.allclose(backbone.model.mlp(pooled), backbone(x))


def test_linear_fc_needs_the_fc_and_all_leaves_it_out(tmp_path):
    path, _ = _ckpt(tmp_path / "plain.pt", False)
    with pytest.raises(ConfigError, match="linear-fc"):
        ev.evaluate(str(path), ["linear-fc"], ev.EvalConfig(linear_paper_epochs=1))
    assert "linear-fc" not in ev.PROTOCOLS and "pooled output of the last binary block" in ev.features_read(
        ev.load_backbone(str(path))[0])
