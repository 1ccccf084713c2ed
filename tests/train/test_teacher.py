import pytest
import torch
import torchvision

from common.errors import CheckpointError
from train.checkpoint import save_checkpoint
from train.models import build_teacher


def _moco_checkpoint(arch="resnet18", seed=0):
    torch.manual_seed(seed)
    net = getattr(torchvision.models, arch)(weights=None)
    sd = {}
    for k, v in net.state_dict().items():
        if k.startswith("fc."):
            continue
        sd["module.encoder_q." + k] = v
        sd["module.encoder_k." + k] = v + 1  # must be ignored
    sd["module.encoder_q.fc.0.weight"] = torch.randn(512, 512)  # MoCo-v2 MLP head: dropped
    sd["module.queue"] = torch.randn(128, 16)
    return {"epoch": 200, "arch": arch, "state_dict": sd}, net


def test_moco_checkpoint_loads(tmp_path):
    ckpt, net = _moco_checkpoint()
    path = tmp_path / "moco.pth.tar"
    torch.save(ckpt, path)
    t = build_teacher("resnet18", str(path))
    assert not any(p.requires_grad for p in t.parameters())
    assert not t.training
    t.train()  # a frozen teacher refuses to leave eval mode
    assert not t.training
    net.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(t(x), net.eval()(x), atol=1e-6)
    assert t(x).shape == (2, 512)


def test_torchvision_checkpoint_loads(tmp_path):
    net = torchvision.models.resnet18(weights=None)
    path = tmp_path / "tv.pth"
    torch.save(net.state_dict(), path)
    t = build_teacher("resnet18", str(path))
    assert torch.equal(t.net.conv1.weight, net.conv1.weight)


def test_burn_edge_teacher_checkpoint(tmp_path):
    src = build_teacher("resnet18", small_input=True, frozen=False)
    path = save_checkpoint(tmp_path / "t.pt", {"kind": "teacher", "teacher_arch": {"arch": "resnet18"},
                                               "model": src.state_dict()})
    t = build_teacher("resnet18", str(path), small_input=True)
    assert torch.equal(t.net.layer1[0].conv1.weight, src.net.layer1[0].conv1.weight)


def test_wrong_arch_is_clear_error(tmp_path):
    ckpt, _ = _moco_checkpoint("resnet18")
    path = tmp_path / "moco.pth.tar"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="does not match teacher resnet50"):
        build_teacher("resnet50", str(path))


def test_small_input_mismatch_hint(tmp_path):
    path = tmp_path / "tv.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match="conv1 shape"):
        build_teacher("resnet18", str(path), small_input=True)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        build_teacher("resnet18", str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        build_teacher("resnet18", str(bad))
