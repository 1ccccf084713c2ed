"""Issue #12 item 8: official state dicts load with exact shapes only; the one documented exception is the
stage-2 flat latent layout ``feature.{i}.binary_*.weights`` of shape (O*I*k*k, 1)."""

from __future__ import annotations

import pytest
import torch

from common.errors import CheckpointError
from tests.train.test_reactnet import _official_state_dict
from train.models import load_official_state_dict


def test_transposed_stem_is_refused_with_key_and_shapes(tiny_reactnet):
    """Before: any tensor with the right element count under a conv key was reshaped (exit 0, wrong logits)."""
    sd = _official_state_dict(tiny_reactnet(blocks=3))
    w = sd["feature.0.conv1.weight"]  # (8, 3, 3, 3)
    sd["feature.0.conv1.weight"] = w.permute(1, 0, 2, 3).contiguous()  # (3, 8, 3, 3): same numel
    with pytest.raises(CheckpointError) as e:
        load_official_state_dict(tiny_reactnet(blocks=3), sd)
    msg = str(e.value)
    assert "feature.0.conv1.weight" in msg and "expected (8, 3, 3, 3)" in msg and "found (3, 8, 3, 3)" in msg


@pytest.mark.parametrize("shape", ["oihw-permuted", "flat-row", "flat-3d"])
def test_binary_weights_only_in_the_documented_flat_layout(tiny_reactnet, shape):
    sd = _official_state_dict(tiny_reactnet(blocks=3))
    key = "module.feature.2.binary_3x3.weights"
    flat = sd[key]
    o = tiny_reactnet(blocks=3).blocks[1].conv3x3.weight.shape
    bad = {"oihw-permuted": flat.reshape(o).permute(2, 3, 0, 1), "flat-row": flat.reshape(1, -1),
           "flat-3d": flat.reshape(-1, 1, 1)}[shape]
    sd[key] = bad
    with pytest.raises(CheckpointError, match=r"expected \(.*\) \(or the flat latent layout \(\d+, 1\)\), found"):
        load_official_state_dict(tiny_reactnet(blocks=3), sd)


def test_flat_latent_and_exact_oihw_both_load(tiny_reactnet):
    src = tiny_reactnet(blocks=3, seed=1)
    sd = _official_state_dict(src)
    key = "module.feature.1.binary_3x3.weights"
    assert sd[key].dim() == 2 and sd[key].shape[1] == 1  # the flat layout
    dst = load_official_state_dict(tiny_reactnet(blocks=3, seed=2), sd)
    sd[key] = sd[key].reshape(src.blocks[0].conv3x3.weight.shape)  # exact OIHW is fine too
    dst2 = load_official_state_dict(tiny_reactnet(blocks=3, seed=3), sd)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(dst.eval()(x), dst2.eval()(x))


def test_non_tensor_entry_is_named(tiny_reactnet):
    sd = _official_state_dict(tiny_reactnet(blocks=3))
    sd["fc.bias"] = [0.0] * 10
    with pytest.raises(CheckpointError, match="'fc.bias' is a list, not a tensor"):
        load_official_state_dict(tiny_reactnet(blocks=3), sd)
