import pytest
import torch

from common.errors import CheckpointError
from tests.train.helpers import tiny_config, write_teacher_checkpoint
from train.checkpoint import read_checkpoint, save_checkpoint
from train.methods import METHODS, Burn, build_method
from train.run_state import checkpoint_payload


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    return write_teacher_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.pt")


def _views(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(n, 3, 32, 32, generator=g), torch.randn(n, 3, 32, 32, generator=g)],
            torch.arange(n) % 10]


def _batch(method, n=4):
    b = _views(n)
    return b if method.data == "two_views" else [b[0][0], b[1]]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_one_step(name, teacher_ckpt, tmp_path):
    torch.manual_seed(0)
    m = build_method(tiny_config(tmp_path, teacher_ckpt, method=name))
    m.train()
    res = m(_batch(m), 0, 10)
    assert res["loss"].dim() == 0 and torch.isfinite(res["loss"])
    res["loss"].backward()
    grads = [p.grad for p in m.network.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    teacher = getattr(m, "teacher", None)
    if teacher is not None:
        assert not any(p.requires_grad or p.grad is not None for p in teacher.parameters())
        assert teacher.training == (getattr(m, "teacher_bn", "eval") == "batch")  # official: batch-statistics BN


class TestBurn:
    def test_g_and_phi_get_gradients_h_none(self, teacher_ckpt, tmp_path):
        torch.manual_seed(0)
        m = build_method(tiny_config(tmp_path, teacher_ckpt, recipe="paper", fs_on="features", teacher_bn="eval"))
        assert isinstance(m, Burn)
        m.train()
        m(_views(), 3, 10)["loss"].backward()
        for name, mod in (("g", m.classifier), ("phi", m.student), ("fs projector", m.fs_projector)):
            ps = list(mod.parameters())
            assert ps and all(p.grad is not None and p.grad.abs().sum() > 0 for p in ps), name
        assert all(p.grad is None and not p.requires_grad for p in m.teacher.parameters())
        assert not m.teacher.training

    @pytest.mark.parametrize("fs_on", ["features", "heads"])
    def test_crossed_views_and_lambda(self, teacher_ckpt, tmp_path, fs_on):
        m = build_method(tiny_config(tmp_path, teacher_ckpt, fs_on=fs_on)).eval()
        (v1, v2), y = _views()
        with torch.no_grad():
            a = m([[v1, v2], y], 0, 10)
            b = m([[v2, v1], y], 0, 10)  # swapping the views only swaps the two crossed terms
        assert a["loss"].item() == pytest.approx(b["loss"].item(), rel=1e-5)
        assert a["lam"] == 0.9 and m.lam(10, 10) == pytest.approx(0.7)

    def test_freeze_classifier(self, teacher_ckpt, tmp_path):
        m = build_method(tiny_config(tmp_path, teacher_ckpt, freeze_classifier=True))
        m(_views(), 0, 10)["loss"].backward()
        assert all(p.grad is None for p in m.classifier.parameters())
        assert all(p.grad is not None for p in m.student.parameters())

    def test_stage2_loads_stage1_phi_and_g(self, teacher_ckpt, tmp_path):
        torch.manual_seed(1)
        joint = dict(recipe="paper", fs_on="features")
        s1 = build_method(tiny_config(tmp_path, teacher_ckpt, stage=1, **joint))
        with torch.no_grad():  # make the stage-1 state recognisable
            for p in list(s1.student.parameters()) + list(s1.classifier.parameters()):
                p.add_(torch.rand_like(p))
        path = save_checkpoint(tmp_path / "s1.pt", checkpoint_payload(s1, tiny_config(tmp_path, teacher_ckpt, **joint)))
        torch.manual_seed(2)
        s2 = build_method(tiny_config(tmp_path, teacher_ckpt, stage=2, init=str(path), **joint))
        assert s2.student.cfg.binary_weights and not s1.student.cfg.binary_weights
        for a, b in ((s1.student, s2.student), (s1.classifier, s2.classifier), (s1.fs_projector, s2.fs_projector)):
            sa, sb = a.state_dict(), b.state_dict()
            assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        assert read_checkpoint(path)["heads"].keys() == {"classifier", "fs_projector"}


class TestErrors:
    def test_missing_teacher_checkpoint(self, tmp_path):
        with pytest.raises(CheckpointError, match="--teacher-checkpoint"):
            build_method(tiny_config(tmp_path))
        with pytest.raises(CheckpointError, match="not found"):
            build_method(tiny_config(tmp_path, tmp_path / "nope.pt"))

    def test_wrong_architecture_teacher(self, teacher_ckpt, tmp_path):
        with pytest.raises(CheckpointError, match="does not match teacher resnet34"):
            build_method(tiny_config(tmp_path, teacher_ckpt, teacher_arch="resnet34"))

    def test_wrong_architecture_init(self, teacher_ckpt, tmp_path):
        s1 = build_method(tiny_config(tmp_path, teacher_ckpt))
        path = save_checkpoint(tmp_path / "s1.pt", checkpoint_payload(s1, tiny_config(tmp_path, teacher_ckpt)))
        with pytest.raises(CheckpointError, match="wrong architecture"):
            build_method(tiny_config(tmp_path, teacher_ckpt, stage=2, init=str(path), width=0.5))
        with pytest.raises(CheckpointError, match="expected a ReActNet checkpoint"):
            build_method(tiny_config(tmp_path, teacher_ckpt, stage=2, init=str(teacher_ckpt)))

    def test_s2bnn_needs_pretrained_head(self, tmp_path):
        from train.models import build_teacher
        t = build_teacher("resnet18", frozen=False)
        p = save_checkpoint(tmp_path / "t.pt", {"kind": "teacher", "teacher_arch": {"arch": "resnet18"},
                                                "model": t.state_dict()})
        with pytest.raises(CheckpointError, match="no pretrained 'projector' head"):
            build_method(tiny_config(tmp_path, p, method="s2bnn"))


def test_burn_is_built_only_through_the_config_path():
    """One source of truth: no module, test or benchmark constructs ``Burn(...)`` by hand (the constructor's
    arguments are all required, and the recipe supplies them through ``Burn.from_config``)."""
    import inspect
    import re
    from pathlib import Path

    params = inspect.signature(Burn.__init__).parameters
    assert all(p.default is inspect.Parameter.empty for p in params.values())  # no defaults to disagree
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"(?<![\w.])Burn\(")  # a call; "class Burn(Method)" is the definition
    offenders = [f"{path.relative_to(root)}:{i}" for folder in ("train", "tests", "benchmarks", "pipeline", "export")
                 for path in sorted((root / folder).rglob("*.py")) if path != Path(__file__).resolve()
                 for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line) and not line.lstrip().startswith("class Burn(")]
    assert not offenders, offenders
