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
OFFICIAL = dict(freeze_classifier=True, fs_on="heads", fs="normalized-l2", lam_schedule="cosine", lam_start=0.9,
                lam_end=0.7, temperature=0.2, augment="official", feature_mlp=True, act_grad="ste", teacher_bn="batch",
                head_hidden=2000, head_dim=2000, teacher_arch="resnet50", batch_size=256, accum_steps=2, lr=3e-4,
                weight_decay=0.0, warmup_epochs=10.0, epochs=200, amp="fp16", width=1.0, num_blocks=13)


@pytest.mark.parametrize("stage", [1, 2])
def test_imagenet_preset_is_the_official_recipe(stage):
    cfg = resolve_config("imagenet-reactnet-a", method="burn", stage=stage).to_dict()
    assert {k: cfg[k] for k in OFFICIAL} == OFFICIAL
    assert cfg["recipe"] == "official"


def test_recipes_differ_only_in_the_classifier_and_fs_form():
    diff = {k for k in RECIPES["official"] if RECIPES["official"][k] != RECIPES["paper"].get(k)}
    assert diff == {"freeze_classifier", "fs"}
    assert resolve_config("digits-tiny", method="burn").recipe == "official"  # the default
    paper = resolve_config("digits-tiny", method="burn", recipe="paper", fs="none")
    assert not paper.freeze_classifier and paper.fs == "none"  # flags win over the recipe
    assert not resolve_config("digits-tiny", method="s2bnn").feature_mlp  # recipes are BURN's only


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
