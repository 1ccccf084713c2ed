"""What the pipeline's plots and progress lines show, from small synthetic metrics files (no training run)."""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import pytest

from pipeline.markdown_report import plot_training_curves, training_series
from pipeline.run import EXPECTED_S, PHASES, expected_seconds


def _metrics(folder: Path, epochs: int, steps_per_epoch: int, kl: bool) -> Path:
    folder.mkdir(parents=True)
    rows = [{"step": s, "epoch": (s - 1) // steps_per_epoch, "loss": 1.0 / s, **({"kl": 2.0 / s} if kl else {})}
            for s in range(5, epochs * steps_per_epoch + 1, 5)]
    with open(folder / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return folder


def test_training_plot_separates_teacher_and_continues_stage_2(tmp_path):
    runs = {"teacher": _metrics(tmp_path / "t", 3, 20, kl=False), "stage1": _metrics(tmp_path / "s1", 10, 20, True),
            "stage2": _metrics(tmp_path / "s2", 10, 20, True)}
    s = training_series(runs)
    assert list(s["teacher"]) == ["teacher"] and "teacher" not in s["burn_loss"]  # own panel, own axis
    (x1, _), (x2, _) = s["burn_loss"]["stage 1"], s["burn_loss"]["stage 2"]
    assert x1[-1] == pytest.approx(10) and x2[0] > x1[-1] and x2[-1] == pytest.approx(20)  # after, not over
    assert s["burn_kl"]["stage 2"][1][0] == pytest.approx(2.0 / 5)  # the KL curve, as logged
    assert s["teacher"]["teacher"][0][-1] == pytest.approx(3)
    assert plot_training_curves(runs, tmp_path / "curves.png") and (tmp_path / "curves.png").stat().st_size > 5000


def test_training_plot_without_runs(tmp_path):
    assert not plot_training_curves({"stage1": tmp_path / "none"}, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_expected_durations():
    args = argparse.Namespace(preset="digits-tiny", epochs=None, teacher_checkpoint=None)
    assert expected_seconds(args, {}) == {ph: float(EXPECTED_S[ph]) for ph in PHASES}
    assert expected_seconds(args, {"stage1": 42.0})["stage1"] == 42.0  # the last run's own timing wins
    args.epochs = 20
    assert expected_seconds(args, {})["stage2"] == 2 * EXPECTED_S["stage2"]
    args.teacher_checkpoint = "moco.pth"
    assert expected_seconds(args, {})["teacher"] == 0.0
    other = argparse.Namespace(preset="imagenet-reactnet-a", epochs=None, teacher_checkpoint=None)
    assert set(expected_seconds(other, {}).values()) == {None}


def test_pipeline_prints_expected_durations(tmp_path, capsys):
    from pipeline.run import main

    _metrics(tmp_path / "stage1", 2, 10, kl=True)
    assert main(["--out", str(tmp_path), "--phases", "report"]) == 0
    out = capsys.readouterr().out
    assert "pipeline: 1 phase(s), expected about 0:05" in out
    assert re.search(r"=== \[1/1\] report \(expected 0:05; about 0:05 left in all\) ===", out)
    assert (tmp_path / "report" / "training_curves.png").is_file()
