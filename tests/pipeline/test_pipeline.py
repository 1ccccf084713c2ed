"""The one-command pipeline: phase plumbing and the report; the full chain is slow."""

import json

import pytest

from pipeline.markdown_report import write_report
from pipeline.run import PHASES, Paths, main
from train.checkpoint import model_from_checkpoint


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
