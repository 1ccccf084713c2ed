"""BURN recipes, the official network's feature MLP, and official BURN checkpoints."""

import pytest
import torch

from tests.export.helpers import randomize_eval_state
from tests.train.helpers import tiny_config, write_teacher_checkpoint
from tests.train.official_burn import openselfsup_checkpoint
from train import evaluate, pretrain
from train.checkpoint import model_from_checkpoint
from train.config import RECIPES, resolve_config
from train.methods import build_method
from train.metrics import read_jsonl
from train.models import ReActNetConfig, reactnet_a
from train.models.reactnet import infer_official_arch

# The official code's settings (docs/training.md, /configs/selfsup/burn/react_burn_stage1_*.py).
OFFICIAL = dict(freeze_classifier=True, fs_on="heads", fs="normalized-l2", kl_direction="target-student",
                lam_schedule="cosine", lam_start=0.9, lam_end=0.7, temperature=0.2, augment="official",
                feature_mlp=True, act_grad="ste", teacher_bn="batch", conv_init="kaiming", weight_grad="identity",
                head_hidden=2000, head_dim=2000, teacher_arch="resnet50", batch_size=256, accum_steps=2, lr=3e-4,
                weight_decay=0.0, warmup_epochs=10.0, epochs=200, amp="fp16", width=1.0, num_blocks=13)


@pytest.mark.parametrize("stage", [1, 2])
def test_imagenet_preset_is_the_official_recipe(stage):
    cfg = resolve_config("imagenet-reactnet-a", method="burn", stage=stage).to_dict()
    assert {k: cfg[k] for k in OFFICIAL} == OFFICIAL
    assert cfg["recipe"] == "official"


def test_recipes_differ_only_where_paper_and_code_differ():
    diff = {k for k in RECIPES["official"] if RECIPES["official"][k] != RECIPES["paper"].get(k)}
    assert diff == {"freeze_classifier", "fs", "fs_on", "kl_direction"}
    assert RECIPES["paper"]["fs_on"] == "features" and RECIPES["paper"]["kl_direction"] == "student-target"
    assert not RECIPES["paper"]["freeze_classifier"]
    assert resolve_config("digits-tiny", method="burn").recipe == "official"  # the default
    paper = resolve_config("digits-tiny", method="burn", recipe="paper", fs="none")
    assert not paper.freeze_classifier and paper.fs == "none"  # flags win over the recipe
    assert not resolve_config("digits-tiny", method="s2bnn").feature_mlp  # recipes are BURN's only


def test_burn_only_defaults_are_the_official_recipe():
    """PretrainConfig's defaults of the fields only BURN reads are RECIPES["official"]: building BURN from a
    bare config cannot silently run a third, unnamed objective. (Fields other methods read too --
    feature_mlp, act_grad, teacher_bn, conv_init, weight_grad -- keep their neutral defaults; the recipe
    sets them for BURN in resolve_config.)"""
    from train.config import PretrainConfig

    burn_only = ("freeze_classifier", "fs_on", "fs", "kl_direction", "lam_schedule", "lam_start", "lam_end")
    default = PretrainConfig().to_dict()
    assert {k: default[k] for k in burn_only} == {k: RECIPES["official"][k] for k in burn_only}


def test_paper_recipe_is_eq4_with_alg1_kl(tmp_path):
    """recipe paper: FS = cosine distance between h(x) and P k(x) (P: the linear map between the widths),
    KL(student || target), g trained; checked against the loss computed by hand from the parts."""
    import torch.nn.functional as F

    from train.losses import kl_loss

    teacher = write_teacher_checkpoint(tmp_path / "t.pt")
    for lam in (1.0, 0.0):
        m = build_method(tiny_config(tmp_path, teacher, recipe="paper", lam_start=lam, lam_end=lam)).eval()
        assert m.fs_on == "features" and m.kl_direction == "student-target" and m.trains_classifier
        assert isinstance(m.fs_projector, torch.nn.Linear) and m.student.feature_dim != m.teacher.feature_dim
        torch.manual_seed(0)
        v1, v2 = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
        with torch.no_grad():
            got = m([[v1, v2], None], 0, 10)["loss"].item()
            h1, h2 = m.teacher(v1), m.teacher(v2)
            k1, k2 = m.student.forward_features(v1), m.student.forward_features(v2)
            if lam == 1.0:  # student view i against the teacher's other view j
                want = sum((1 - F.cosine_similarity(h, m.fs_projector(k), dim=1)).mean()
                           for h, k in ((h2, k1), (h1, k2)))
            else:
                g1, g2 = m.classifier(h1), m.classifier(h2)
                l1, l2 = m.student.forward_head(k1), m.student.forward_head(k2)
                want = kl_loss(l1, g2, 0.2) + kl_loss(l2, g1, 0.2)  # kl_loss(p, q) = KL(p || q): student first
        assert got == pytest.approx(want.item() / 2, rel=1e-4), lam


def test_official_conv_init_and_unclipped_weight_ste(tmp_path):
    from train.methods.common import build_student
    from train.models.layers import BinaryConv2d

    cfg = tiny_config(tmp_path, recipe="official", stage=2)
    assert (cfg.conv_init, cfg.weight_grad) == ("kaiming", "identity")
    torch.manual_seed(0)
    net = build_student(cfg, 16)
    conv = next(m for m in net.modules() if isinstance(m, BinaryConv2d) and m.kernel_size == 3)
    fan_in = conv.weight[0].numel()
    assert abs(float(conv.weight.detach().std()) / (2 / fan_in) ** 0.5 - 1) < 0.15  # kaiming normal, fan_in
    assert conv.weight_grad == "identity"
    with torch.no_grad():
        conv.weight.mul_(10)  # most |W| > 1: a clipped STE would pass no gradient there
    w = conv.weight
    (conv.effective_weight() * torch.randn_like(w)).sum().backward()
    assert float((w.grad != 0).float().mean()) > 0.99
    clipped = build_student(tiny_config(tmp_path, method="supervised", stage=2), 16)
    assert all(m.weight_grad == "clipped" for m in clipped.modules() if isinstance(m, BinaryConv2d))


def test_official_method_freezes_g_and_trains_the_feature_mlp(tmp_path):
    teacher = write_teacher_checkpoint(tmp_path / "t.pt")
    m = build_method(tiny_config(tmp_path, teacher, recipe="official"))
    assert not any(p.requires_grad for p in m.classifier.parameters())
    assert m.student.mlp is not None and all(p.requires_grad for p in m.student.mlp.parameters())
    m.train()
    assert m.teacher.training and not any(p.requires_grad for p in m.teacher.parameters())  # batch-stat BN
    w = m.classifier[0].weight
    assert abs(float(w.std()) - (2 / w.shape[1]) ** 0.5) < 0.3 * (2 / w.shape[1]) ** 0.5  # kaiming normal


def test_feature_mlp_is_part_of_the_features():
    torch.manual_seed(0)
    m = reactnet_a(width=0.25, input_size=32, num_classes=16, num_blocks=2, head_hidden=8, feature_mlp=True).eval()
    x = torch.randn(2, 3, 32, 32)
    pooled = torch.flatten(m.pool(m.blocks[1](m.blocks[0](m.stem(x)))), 1)
    assert torch.equal(m.forward_features(x), torch.relu(m.mlp[0](pooled)))
    assert m.forward_features(x).shape == (2, m.feature_dim)


def test_official_burn_checkpoint_loads_into_the_model_and_evaluate(tmp_path):
    torch.manual_seed(0)
    ours = randomize_eval_state(reactnet_a(width=0.25, input_size=32, num_classes=16, num_blocks=3, head_hidden=8,
                                           feature_mlp=True))
    ck = openselfsup_checkpoint(ours)
    arch = infer_official_arch(ck["state_dict"], ReActNetConfig(input_size=32))
    assert (arch.width, arch.num_blocks, arch.feature_mlp, arch.head_hidden, arch.num_classes) == (0.25, 3, True, 8, 16)
    loaded = model_from_checkpoint(ck, ReActNetConfig(input_size=32)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), ours(x)) and torch.equal(loaded.forward_features(x), ours.forward_features(x))
    # backbone-only (linear-eval) checkpoints load too; the head stays at its init
    backbone = {k: v for k, v in ck["state_dict"].items() if k.startswith("backbone.")}
    with torch.no_grad():
        assert torch.equal(model_from_checkpoint(backbone, ReActNetConfig(input_size=32)).eval().forward_features(x),
                           ours.forward_features(x))
    path = tmp_path / "burn_official.pth"
    torch.save(ck, path)
    feats, _ = evaluate.load_backbone(str(path))
    with torch.no_grad():
        assert torch.equal(feats.eval()(x), ours.forward_features(x))
    res = evaluate.evaluate(str(path), ("knn",), evaluate.EvalConfig(dataset="digits"))
    assert 0.0 <= res["knn"]["top1"] <= 1.0


def test_official_kl_stays_informative_after_the_first_epoch(tmp_path):
    """The default recipe learns through its classifier: KL carries signal after epoch 1 (digits)."""
    teacher = write_teacher_checkpoint(tmp_path / "t.pt")
    cfg = resolve_config("digits-tiny", teacher_checkpoint=str(teacher), teacher_arch="resnet18", num_blocks=2,
                         epochs=2, limit_train=256, batch_size=32, log_every=1, out=str(tmp_path / "run"),
                         num_workers=0)
    assert cfg.recipe == "official" and cfg.freeze_classifier
    pretrain.run(cfg)
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    second_epoch = [r["kl"] for r in rows if r["epoch"] == 1]
    assert second_epoch and min(second_epoch) > 0.05, second_epoch  # joint g collapses to ~0.000 here


def test_pretrain_cli_offers_the_recipes(capsys):
    with pytest.raises(SystemExit):
        pretrain.main(["--help"])
    out = capsys.readouterr().out
    assert "--recipe" in out and "official" in out and "paper" in out
