import json

import pytest
import torch

from common.errors import CheckpointError, ConfigError
from train import evaluate as ev
from train.checkpoint import model_from_checkpoint, reactnet_payload, read_checkpoint, save_checkpoint
from train.models import build_teacher, reactnet_a


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    m = reactnet_a(width=0.25, input_size=32, num_classes=16, num_blocks=2, head_hidden=32)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "checkpoint.pt",
                           reactnet_payload(m, method="burn", stage=1, config={"dataset": "digits"}))


FAST = ev.EvalConfig(linear_epochs=5, linear_paper_epochs=2, semi_fractions=(0.05,), semi_epochs=1, shots=(1, 2),
                     fewshot_seeds=2)


def test_all_protocols_on_a_tiny_checkpoint(tiny_ckpt):
    res = ev.evaluate(str(tiny_ckpt), ev.PROTOCOLS, FAST)
    for p in ("linear", "linear-paper", "knn"):
        assert 0.0 <= res[p]["top1"] <= res[p]["top5"] <= 1.0
    assert res["linear-paper"]["epochs"] == 2
    assert res["knn"]["top1"] > 0.3  # pooled stem-level features of digits are already informative
    assert set(res["fewshot-svm"]) == {"1-shot", "2-shot"}
    r1 = res["fewshot-svm"]["1-shot"]
    assert len(r1["runs"]) == 2 and r1["std"] >= 0 and r1["mean"] == pytest.approx(sum(r1["runs"]) / 2)
    semi = res["semi"]["5%"]
    assert semi["labelled_images"] == 70 and 0.0 <= semi["top1"] <= 1.0  # 5 % of each digit class, rounded
    assert "linear" in ev.format_result(res)


def test_pure_protocols_on_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    centres = torch.eye(3) * 5
    f = centres[y] + 0.1 * torch.randn(60, 3, generator=g)
    assert ev.knn_classify(f[:30], y[:30], f[30:], y[30:], k=5)["top1"] == 1.0
    assert ev.linear_probe(f[:30], y[:30], f[30:], y[30:], epochs=50)["top1"] == 1.0
    assert ev.fewshot_svm(f[:30], y[:30], f[30:], y[30:], shots=(1,), seeds=3)["1-shot"]["mean"] == 1.0
    idx = ev.balanced_subset(y.numpy(), 0.1)
    assert len(idx) == 6 and sorted(torch.bincount(y[idx]).tolist()) == [2, 2, 2]


def test_random_init_and_teacher_checkpoints(tiny_ckpt, tmp_path):
    rnd = ev.evaluate(str(tiny_ckpt), ["knn"], ev.EvalConfig(random_init=True))
    assert rnd["random_init"] and 0 <= rnd["knn"]["top1"] <= 1
    t = build_teacher("resnet18", frozen=False)
    arch = {"arch": "resnet18", "small_input": False}
    p = save_checkpoint(tmp_path / "t.pt", {"kind": "teacher", "teacher_arch": arch, "model": t.state_dict(),
                                            "config": {"dataset": "digits"}})
    assert 0 <= ev.evaluate(str(p), ["knn"])["knn"]["top1"] <= 1


def test_cli(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert ev.main([str(tiny_ckpt), "--protocol", "knn", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "knn" in printed and "knn" in json.loads(out.read_text())
    # progress a log file can show (plain lines, no bars off a terminal) and the file it wrote
    assert "evaluate: kNN (k=20) ..." in printed and "evaluate: kNN (k=20) done in" in printed
    assert f"wrote {out}" in printed and "\r" not in printed
    assert ev.main([str(tmp_path / "missing.pt")]) == 2
    assert capsys.readouterr().err.startswith("error: checkpoint not found")


def test_wrong_kind(tmp_path):
    p = save_checkpoint(tmp_path / "x.pt", {"kind": "something", "model": {}})
    with pytest.raises(CheckpointError, match="not a burn-edge"):
        ev.load_backbone(str(p))


def test_folded_classifier_equals_the_trained_probe_on_real_features(tiny_ckpt):
    """The deployable classifier's logits on images == the trained probe's logits on their features."""
    res, model, probe = ev.deployable_classifier(str(tiny_ckpt), ("linear", "knn"), FAST)
    assert model.cfg.num_classes == 10 and model.cfg.head_hidden == 0 and "knn" in res
    _, ckpt = ev.load_backbone(str(tiny_ckpt))
    test_set, _ = ev.eval_dataset(ckpt, FAST, "test")
    x = torch.stack([test_set[i][0] for i in range(64)])
    with torch.no_grad():
        logits, feats = model.eval()(x), model.forward_features(x)
    expected = probe(feats)  # what the probe protocol computes: linear((f - mean) / std)
    assert torch.allclose(logits, expected, atol=1e-4, rtol=1e-4)
    assert (logits.argmax(1) == expected.argmax(1)).all()
    assert probe.linear.out_features == 10 and probe.mean.shape == probe.std.shape == (model.feature_dim,)
    assert res["classifier"]["test_top1"] == pytest.approx(res["linear"]["top1"], abs=2 / len(test_set))


def test_cli_saves_the_deployable_classifier(tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "classifier.pt"
    assert ev.main([str(tiny_ckpt), "--protocol", "knn", "--classifier", str(out), "--linear-epochs", "5"]) == 0
    printed = capsys.readouterr().out
    assert "linear" in printed and "classifier" in printed and str(out) in printed  # linear added for the fold
    ck = read_checkpoint(out)
    assert ck["method"] == "burn+linear-probe" and ck["stage"] == 1 and ck["config"] == {"dataset": "digits"}
    assert model_from_checkpoint(ck).cfg.num_classes == 10
    assert ev.main([str(tiny_ckpt), "--classifier", str(tiny_ckpt)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --classifier") and err.count("\n") == 1


def test_fold_needs_the_linear_protocol(tiny_ckpt):
    with pytest.raises(ConfigError, match="linear"):
        ev.deployable_classifier(str(tiny_ckpt), ("knn",), FAST)


@pytest.mark.slow
def test_fold_on_the_full_size_network():
    """Full ReActNet-A (224², 1000-class head replaced): the folded head equals the probe on real-size features."""
    torch.manual_seed(0)
    model = reactnet_a(binary_weights=True).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        feats = model.forward_features(x)  # (2, 1024)
    probe = ev.LinearProbe(torch.nn.Linear(feats.shape[1], 7), feats.mean(0) + 0.1, feats.std(0) + 0.5)
    model = ev.fold_linear_probe(model, probe)
    with torch.no_grad():
        logits = model(x)
    assert model.cfg.num_classes == 7 and logits.shape == (2, 7)
    assert torch.allclose(logits, probe(feats), atol=1e-4, rtol=1e-4)
