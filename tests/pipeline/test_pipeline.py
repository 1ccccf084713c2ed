"""The one-command pipeline: phase plumbing and the report; the full chain is slow."""

import json
import shutil

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


def _exported(tmp_path, lce_model, float_model=None) -> Paths:
    """A pipeline folder whose export phase produced these models (and their metadata sidecars)."""
    from runtimes.format import sidecar_path

    paths = Paths(tmp_path / "run")
    paths.export.mkdir(parents=True)
    for src, dst in ((lce_model, paths.lce), (float_model, paths.float)):
        if src is not None:
            shutil.copyfile(src, dst)
            shutil.copyfile(sidecar_path(src), sidecar_path(dst))
    return paths


@pytest.mark.lce
def test_arm_phase_and_report_section(lce_model, float_tflite_model, tmp_path):
    """The arm phase runs the real lane on the exported LCE model (one bconv, ~5 s of qemu; ~15 s more with the
    float twin) and the report renders its verdict and instruction-count tables after the latency section."""
    from runtimes.arm_lane import build, float_twin

    if build.missing():
        pytest.skip("ARM lane unavailable: " + "; ".join(build.missing()))
    paths = _exported(tmp_path, lce_model, float_tflite_model)
    assert main(["--out", str(paths.out), "--phases", "arm", "report"]) == 0
    lane = json.loads(paths.arm.read_text())["lane"]
    assert [r["ok"] for r in lane["layers"]] == [True]
    md = (paths.report / "README.md").read_text()
    section = md[md.index("## ARM (aarch64) without a device"):]
    assert "**1/1 layers agree with the x86 LCE interpreter" in section
    assert "| op | layer | default BGEMM kernel | insns | indirect BGEMM kernel | insns | bitpack insns |" in section
    assert f"| `{lane['layers'][0]['bgemm']['kernel']}` | {lane['layers'][0]['bgemm']['insns']:,} |" in section
    assert "not cycles" in section and "Every layer ran LCE's NEON/assembly kernels on both paths." in section
    why = float_twin.missing()
    if why is None:
        assert "float CONV_2D insns (XNNPACK)" in section and "whole model, one invoke: float twin" in section
    else:
        assert f"not run: {why}" in section and "whole model: not run: " in section


@pytest.mark.lce
def test_arm_phase_says_why_for_every_layer(lce_model, tmp_path, capsys):
    """Without the sources the arm phase takes no time, and arm.json, the log and the report say why for each
    layer; the pipeline still exits 0 (nothing failed: nothing ran)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    paths = _exported(tmp_path, lce_model)
    assert main(["--out", str(paths.out), "--phases", "arm", "report", "--lce-source", str(empty)]) == 0
    log = capsys.readouterr().out
    assert "ARM lane, op 2 (3x3x8->16 on 16x16x8): not run: " + str(empty) in log
    assert json.loads(paths.arm.read_text())["lane"]["unavailable"][-1].startswith("get the sources")
    md = (paths.report / "README.md").read_text()
    assert "The lane did **not run** for `model.tflite`:" in md and f"- {empty}/ruy/ruy/trmul.h missing" in md
    assert "| 2 | 16x16x8 | 3x3x8->16 | 1 | neon (int16 acc) | neon | not run (reasons above) |" in md


@pytest.mark.slow
@pytest.mark.lce
def test_full_pipeline_on_digits(tmp_path):
    """The README's first command end to end (shortened training): every phase's files, gate passes."""
    rc = main(["--out", str(tmp_path), "--epochs", "1", "--bench-runs", "3", "--threads", "1",
               "--verify-limit", "16", "--android-assets", str(tmp_path / "assets")])
    paths = Paths(tmp_path)
    assert rc == 0
    for p in (paths.teacher, paths.stage1, paths.stage2, paths.classifier, paths.onnx, paths.lce, paths.float,
              paths.verify, paths.bench, paths.arm, paths.report / "README.md", tmp_path / "assets" / "metadata.json"):
        assert p.is_file(), p
    assert json.loads(paths.verify.read_text())["passed"]
    assert model_from_checkpoint(paths.classifier).cfg.num_classes == 10
