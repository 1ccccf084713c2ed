import pickle

import pytest
import torch

from common.errors import CheckpointError
from train.checkpoint import model_from_checkpoint, reactnet_payload, read_checkpoint, save_checkpoint


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_roundtrip(tmp_path, tiny_reactnet):
    m = tiny_reactnet(blocks=2).eval()
    path = save_checkpoint(tmp_path / "a" / "m.pt", reactnet_payload(m, step=3))
    assert not list(path.parent.glob("*.tmp"))
    ck = read_checkpoint(path)
    assert ck["format"] == "burn-edge/1" and ck["step"] == 3
    m2 = model_from_checkpoint(path).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(m(x), m2(x))


def test_refuses_pickled_code(tmp_path):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        torch.save({"x": Evil()}, f, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_checkpoint(p)


def test_truncated(tmp_path, tiny_reactnet):
    p = save_checkpoint(tmp_path / "m.pt", reactnet_payload(tiny_reactnet()))
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(p)


def test_wrong_kind_and_official_without_arch(tmp_path, tiny_reactnet):
    with pytest.raises(CheckpointError, match="teacher"):
        model_from_checkpoint({"kind": "teacher", "model": {}})
    with pytest.raises(CheckpointError, match="records no architecture"):
        model_from_checkpoint({"feature.0.conv1.weight": torch.zeros(1)})
