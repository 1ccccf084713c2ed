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
    with pytest.raises(CheckpointError, match="never unpickled") as e:
        read_checkpoint(p)
    assert "weights_only=False" not in str(e.value) and "print" in str(e.value)


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_are_corrupt_not_unsafe(tmp_path, seed):
    """Issue #12 item 10: random bytes were reported as "refused by weights_only=True" with torch's advice
    to pass weights_only=False."""
    p = tmp_path / "r.pt"
    p.write_bytes(torch.randint(0, 256, (3000 + seed,), generator=torch.Generator().manual_seed(seed),
                                dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match="corrupt or truncated") as e:
        read_checkpoint(p)
    assert "weights_only" not in str(e.value)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("arch"), "'arch' is missing"),
    (lambda c: c.update(arch=[1, 2]), "'arch' is a list"),
    (lambda c: c["arch"].update(width="wide"), "arch field 'width' is 'wide'"),
    (lambda c: c["arch"].update(num_blocks=2.5), "arch field 'num_blocks'"),
    (lambda c: c["arch"].update(width=1e30), "outside"),
    (lambda c: c["arch"].update(padding="zeros"), "padding must be one of"),
    (lambda c: c.update(model=[1, 2]), "'model' is a list, not a state dict"),
    (lambda c: c.pop("model"), "'model' is missing"),
    (lambda c: c["model"].update({"stem.conv.weight": "x"}), "not a tensor"),
])
def test_ill_formed_checkpoint_is_a_checkpoint_error(tiny_reactnet, change, message):
    """Issue #12 item 9: a missing/ill-typed ``arch`` or a non-dict ``model`` gave a traceback."""
    ck = reactnet_payload(tiny_reactnet(blocks=1))
    ck["arch"] = dict(ck["arch"])
    change(ck)
    with pytest.raises(CheckpointError, match=message):
        model_from_checkpoint(ck)


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
