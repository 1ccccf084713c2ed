"""The one-command pipeline: phase plumbing, the folded classifier head, the report; the full chain is slow."""

import json

import pytest
import torch
import torch.nn as nn

from train.checkpoint import model_from_checkpoint
from train.pipeline import PHASES, Paths, fold_linear_probe, main
from train.report import write_report


def test_fold_linear_probe_equals_probe_on_standardised_features(tiny_reactnet):
    torch.manual_seed(0)
    model = tiny_reactnet(blocks=2, num_classes=64, head_hidden=32).eval()
    feats = torch.randn(20, model.feature_dim) * 3 + 1
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    probe = nn.Linear(model.feature_dim, 10)
    expected = probe((feats - mean) / std)
    folded = fold_linear_probe(model, probe, mean, std)
    assert folded.cfg.num_classes == 10 and folded.cfg.head_hidden == 0
    assert torch.allclose(folded.forward_head(feats), expected, atol=1e-4)
    x = torch.randn(2, 3, 32, 32)
    assert folded(x).shape == (2, 10)


def test_phase_without_its_inputs_is_one_clear_error(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--phases", "export"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "evaluate" in err and "Traceback" not in err


def test_report_from_partial_outputs(tmp_path):
    paths = Paths(tmp_path)
    paths.eval.write_text(json.dumps({
        "burn-stage2": {"linear": {"top1": 0.7}, "knn": {"top1": 0.6}},
        "random-init": {"linear": {"top1": 0.15}, "knn": {"top1": 0.14}},
        "classifier": {"test_top1": 0.72}}))
    md = write_report(paths, {"evaluate": 3.0}).read_text()
    assert "| burn-stage2 | 70.0% | 60.0% |" in md and "72.0%" in md
    assert (paths.report / "accuracy.png").stat().st_size > 1000
    assert "Latency" not in md  # no bench.json yet: section skipped


def test_help_lists_phases(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(ph in out for ph in PHASES)


@pytest.mark.slow
@pytest.mark.lce
def test_full_pipeline_on_digits(tmp_path):
    """The README's first command end to end (shortened training): every phase's files, gate passes."""
    rc = main(["--out", str(tmp_path), "--epochs", "1", "--bench-runs", "3", "--threads", "1",
               "--verify-limit", "16", "--android-assets", str(tmp_path / "assets")])
    paths = Paths(tmp_path)
    assert rc == 0
    for p in (paths.teacher, paths.stage1, paths.stage2, paths.classifier, paths.onnx, paths.lce, paths.float,
              paths.verify, paths.bench, paths.report / "README.md", tmp_path / "assets" / "metadata.json"):
        assert p.is_file(), p
    assert json.loads(paths.verify.read_text())["passed"]
    assert model_from_checkpoint(paths.classifier).cfg.num_classes == 10
