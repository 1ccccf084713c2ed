"""The trainer never writes a non-finite checkpoint, never loses a good one, and logs each step once
(issue #12 items 1, 6, 9, 10)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.train.helpers import tiny_config
from train import pretrain
from train.checkpoint import read_checkpoint
from train.metrics import read_jsonl

SUPERVISED = ["--method", "supervised", "--dataset", "digits", "--width", "0.25", "--num-blocks", "1",
              "--limit-train", "128", "--batch-size", "32", "--device", "cpu", "--warmup-epochs", "0"]


def _errors(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(("error", "Traceback"))]


def test_exploding_lr_stops_at_the_first_nonfinite_loss_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    """Before: NaN was checked on logged steps only; with --lr 1e30 the run overwrote checkpoint.pt with NaN
    weights (266 of 298 tensors) and ended in a FloatingPointError traceback."""
    out = tmp_path / "run"
    argv = [*SUPERVISED, "--epochs", "3", "--lr", "1e30", "--log-every", "100", "--save-every", "1",
            "--out", str(out)]
    assert pretrain.main(argv) == 2
    err = _errors(capsys)
    assert len(err) == 1 and err[0].startswith("error: ") and "lower --lr" in err[0], err
    ckpt = out / "checkpoint.pt"
    if "No checkpoint was written" in err[0]:
        assert not ckpt.exists()
    else:
        assert f"The last good checkpoint is {ckpt}" in err[0]
        ck = read_checkpoint(ckpt)
        assert all(bool(torch.isfinite(t).all()) for t in ck["model"].values() if t.is_floating_point())
        assert f"(step {ck['step']})" in err[0]


@pytest.mark.parametrize("flag, value, message", [("--log-every", "0", "--log-every must be an integer in [1,"),
                                                  ("--save-every", "-1", "--save-every must be an integer in [0,"),
                                                  ("--lr", "inf", "--lr must be a finite number > 0")])
def test_bad_run_control_values(tmp_path, capsys, flag, value, message):
    """Before: --log-every 0 died with ZeroDivisionError."""
    assert pretrain.main([*SUPERVISED, "--epochs", "1", flag, value, "--out", str(tmp_path / "r")]) == 2
    err = _errors(capsys)
    assert len(err) == 1 and message in err[0], err


class Crash(Exception):
    pass


def test_resume_logs_every_step_once_and_cleans_stale_temps(tmp_path):
    """Before: after --resume, metrics.jsonl repeated the steps between the checkpoint and the crash, and the
    temp file of a killed save stayed in the run folder forever."""
    out = tmp_path / "run"
    cfg = tiny_config(out, method="supervised", epochs=2, limit_train=96, save_every=2, log_every=1)

    def crash(step):
        if step == 9:
            raise Crash

    with pytest.raises(Crash):
        pretrain.run(cfg, on_step=crash)
    assert read_checkpoint(out / "checkpoint.pt")["step"] == 8
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == list(range(1, 10))
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 10, "lo')  # a torn line from the killed process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".checkpoint.pt.tmp-{int(dead.stdout)}-x1y2.pt"
    stale.write_bytes(b"half a checkpoint")
    assert pretrain.main(["--resume", str(out / "checkpoint.pt")]) == 0
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl")]
    assert steps == list(range(1, 13)), steps
    csv_steps = [int(line.split(",")[0]) for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert csv_steps == list(range(1, 13))
    assert not stale.exists()


def test_supervised_refuses_a_single_class_folder(tmp_path, capsys):
    """Before: a training folder with one class trained silently (zero loss, nothing learned)."""
    d = tmp_path / "data" / "train" / "only"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    argv = ["--method", "supervised", "--dataset", "imagefolder", "--data-root", str(tmp_path / "data"),
            "--width", "0.25", "--num-blocks", "1", "--epochs", "1", "--batch-size", "4", "--out",
            str(tmp_path / "r"), "--device", "cpu"]
    assert pretrain.main(argv) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "has 1 class" in err[0], err


def test_out_checkpoint_equal_to_init_is_refused(tmp_path, capsys):
    out = tmp_path / "s1"
    assert pretrain.main([*SUPERVISED, "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    argv = [*SUPERVISED, "--epochs", "1", "--stage", "2", "--init", str(out / "checkpoint.pt"), "--out", str(out)]
    assert pretrain.main(argv) == 2
    err = _errors(capsys)
    assert len(err) == 1 and "is the input file" in err[0], err
    assert (out / "checkpoint.pt").read_bytes() == before
