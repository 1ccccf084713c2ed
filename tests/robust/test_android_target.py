"""export.android_assets writes only inside its target folder, never through links, never a partial model
(issue #12 items 4, 5, 9)."""

from __future__ import annotations

import os

import pytest

from export.android_assets import main
from tests.android.test_android_assets import fake_tflite, minimal_tflite
from train.checkpoint import reactnet_payload, save_checkpoint


@pytest.fixture
def checkpoint(tmp_path, tiny_reactnet):
    return str(save_checkpoint(tmp_path / "ckpt.pt", reactnet_payload(tiny_reactnet(blocks=1, size=32),
                                                                    config={"dataset": "digits"})))


def _run(capsys, argv) -> tuple[int, list[str]]:
    rc = main(argv)
    return rc, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_symlinked_samples_folder_is_refused_and_untouched(tmp_path, checkpoint, capsys):
    """Before: a samples/ link to a folder outside the assets had its PNGs deleted and new ones written there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.png").write_bytes(b"keep me")
    assets = tmp_path / "assets"
    assets.mkdir()
    os.symlink(outside, assets / "samples")
    rc, err = _run(capsys, ["--lce", fake_tflite(tmp_path / "m.tflite"), "--checkpoint", checkpoint,
                            "-o", str(assets), "--samples", "3"])
    assert rc == 2 and len(err) == 1 and "symbolic link" in err[0], err
    assert [p.name for p in outside.iterdir()] == ["precious.png"]
    assert not (assets / "metadata.json").exists()


def test_symlinked_model_file_is_refused(tmp_path, checkpoint, capsys):
    target = tmp_path / "elsewhere.tflite"
    target.write_bytes(b"not yours")
    assets = tmp_path / "assets"
    assets.mkdir()
    os.symlink(target, assets / "model_lce.tflite")
    rc, err = _run(capsys, ["--lce", fake_tflite(tmp_path / "m.tflite"), "--checkpoint", checkpoint,
                            "-o", str(assets)])
    assert rc == 2 and "symbolic link" in err[0] and target.read_bytes() == b"not yours"


def test_partial_model_is_not_packaged(tmp_path, checkpoint, capsys):
    """Before: the first 262,144 bytes of a model (a killed export) passed the bytes 4-8 check and were copied."""
    m = tmp_path / "m.tflite"
    m.write_bytes(minimal_tflite(b"x" * 64)[:100])
    rc, err = _run(capsys, ["--lce", str(m), "--checkpoint", checkpoint, "-o", str(tmp_path / "a")])
    assert rc == 2 and len(err) == 1 and "corrupt TFLite flatbuffer" in err[0], err
    assert not (tmp_path / "a" / "model_lce.tflite").exists()


def test_output_that_is_a_file_is_one_error_line(tmp_path, checkpoint, capsys):
    """Before: ``-o <existing file>`` ended in a FileExistsError traceback."""
    f = tmp_path / "file"
    f.write_text("x")
    rc, err = _run(capsys, ["--lce", fake_tflite(tmp_path / "m.tflite"), "--checkpoint", checkpoint, "-o", str(f)])
    assert rc == 2 and len(err) == 1 and "is a file, not a folder" in err[0], err


def test_input_model_inside_the_target_is_not_clobbered(tmp_path, checkpoint, capsys):
    """--float pointing at the assets' own model_lce.tflite would be overwritten by the LCE copy first."""
    assets = tmp_path / "assets"
    assets.mkdir()
    flt = fake_tflite(assets / "model_lce.tflite", b"float")
    before = (assets / "model_lce.tflite").read_bytes()
    rc, err = _run(capsys, ["--lce", fake_tflite(tmp_path / "l.tflite", b"lce"), "--float", flt,
                            "--checkpoint", checkpoint, "-o", str(assets)])
    assert rc == 2 and "is the input file" in err[0], err
    assert (assets / "model_lce.tflite").read_bytes() == before
