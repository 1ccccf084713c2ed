"""Export CLIs never destroy an input, never fail only after the long work, never export NaN
(issue #12 items 1, 2, 4, 9 and the stale-temp part of 10)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from export import audit, to_lce, to_onnx
from train.checkpoint import reactnet_payload, save_checkpoint

REPO = Path(__file__).parents[2]


def _one_error(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def ckpt(tmp_path, tiny_reactnet):
    return save_checkpoint(tmp_path / "m.pt", reactnet_payload(tiny_reactnet(blocks=1).eval()))


@pytest.mark.parametrize("cli", [to_onnx, to_lce], ids=["to_onnx", "to_lce"])
def test_output_equal_to_checkpoint_is_refused(cli, ckpt, capsys):
    """Before: ``export.to_onnx a.pt -o a.pt`` replaced the checkpoint by the model, exit 0."""
    before = ckpt.read_bytes()
    assert cli.main([str(ckpt), "-o", str(ckpt.parent / "." / ckpt.name)]) == 2
    assert "is the input file" in _one_error(capsys) and ckpt.read_bytes() == before


def test_output_hard_link_to_checkpoint_is_refused(ckpt, capsys):
    link = ckpt.parent / "link.onnx"
    os.link(ckpt, link)
    assert to_onnx.main([str(ckpt), "-o", str(link)]) == 2
    assert "is the input file" in _one_error(capsys)


@pytest.mark.parametrize("cli", [to_onnx, to_lce], ids=["to_onnx", "to_lce"])
def test_unwritable_output_fails_before_loading(cli, ckpt, capsys):
    """Before: ``to_lce -o /proc/x.tflite`` failed with a traceback after a 26 s conversion."""
    assert cli.main([str(ckpt), "-o", "/proc/burn-edge-test/x.model"]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and "/proc/burn-edge-test" in out.err and "… load" not in out.out


@pytest.mark.parametrize("cli", [to_onnx, to_lce], ids=["to_onnx", "to_lce"])
def test_nonfinite_weights_are_refused(cli, tmp_path, tiny_reactnet, capsys):
    """Before: an all-NaN checkpoint exported with exit 0 (to_onnx even printed ``= nan`` then ✓ check)."""
    m = tiny_reactnet(blocks=1)
    with torch.no_grad():
        m.blocks[0].conv3x3.weight.fill_(float("nan"))
        m.stem.bn.running_var[0] = float("inf")
    path = save_checkpoint(tmp_path / "nan.pt", reactnet_payload(m))
    assert cli.main([str(path), "-o", str(tmp_path / "out.model")]) == 2
    msg = _one_error(capsys)
    assert "2 of" in msg and "NaN/Inf" in msg and "blocks.0.conv3x3.weight" in msg
    assert not list(tmp_path.glob("out*"))


def test_audit_json_equal_to_model_is_refused(tmp_path, capsys):
    m = tmp_path / "m.tflite"
    m.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 64)
    assert audit.main([str(m), "--json", str(m)]) == 2
    assert "is the input file" in _one_error(capsys) and m.read_bytes()[4:8] == b"TFL3"


def test_audit_of_truncated_model_is_one_line(float_tflite_model, tmp_path, capsys):
    """Before: a traceback from the flatbuffer reader on the first half of a valid model."""
    full = float_tflite_model
    half = tmp_path / "half.tflite"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert audit.main([str(half)]) == 2
    assert "corrupt TFLite flatbuffer" in _one_error(capsys)


def test_stale_temps_are_cleaned_and_a_dead_writer_leaves_the_old_file(ckpt, tmp_path):
    """A temp left by a killed writer (pid that no longer runs) is removed by the next export into that folder;
    an export killed with SIGKILL before its rename leaves the previous model byte-for-byte intact."""
    out = tmp_path / "model.onnx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".model.onnx.tmp-{int(dead.stdout)}-abc.onnx"
    stale.write_bytes(b"partial")
    out.write_bytes(b"previous good model")
    p = subprocess.Popen([sys.executable, "-m", "export.to_onnx", str(ckpt), "-o", str(out)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.startswith("… build"):  # after the output checks, before the save
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=120)
    assert not stale.exists()
    assert out.read_bytes() == b"previous good model"
    assert [f.name for f in tmp_path.iterdir() if ".tmp-" in f.name] == []
    assert to_onnx.main([str(ckpt), "-o", str(out)]) == 0 and out.read_bytes()[:2] != b"pr"
