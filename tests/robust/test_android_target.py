"""export.android_assets writes only inside its target folder, never through links, never a partial model
(issue #12 items 4, 5, 9)."""

from __future__ import annotations

import os

import pytest

from export.android_assets import main
from tests.android.test_android_assets import model_copy
from train.checkpoint import reactnet_payload, save_checkpoint


@pytest.fixture
def checkpoint(tmp_path, tiny_reactnet):
    return str(save_checkpoint(tmp_path / "ckpt.pt", reactnet_payload(tiny_reactnet(blocks=1, size=32),
                                                                    config={"dataset": "digits"})))


def _run(capsys, argv) -> tuple[int, list[str]]:
    rc = main(argv)
    return rc, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_symlinked_samples_folder_is_refused_and_untouched(tmp_path, checkpoint, capsys, lce_model):
    """Before: a samples/ link to a folder outside the assets had its PNGs deleted and new ones written there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.png").write_bytes(b"keep me")
    assets = tmp_path / "assets"
    assets.mkdir()
    os.symlink(outside, assets / "samples")
    rc, err = _run(capsys, ["--lce", model_copy(lce_model, tmp_path / "m.tflite"), "--checkpoint", checkpoint,
                            "-o", str(assets), "--samples", "3"])
    assert rc == 2 and len(err) == 1 and "symbolic link" in err[0], err
    assert [p.name for p in outside.iterdir()] == ["precious.png"]
    assert not (assets / "metadata.json").exists()


def test_symlinked_model_file_is_refused(tmp_path, checkpoint, capsys, lce_model):
    target = tmp_path / "elsewhere.tflite"
    target.write_bytes(b"not yours")
    assets = tmp_path / "assets"
    assets.mkdir()
    os.symlink(target, assets / "model_lce.tflite")
    rc, err = _run(capsys, ["--lce", model_copy(lce_model, tmp_path / "m.tflite"), "--checkpoint", checkpoint,
                            "-o", str(assets)])
    assert rc == 2 and "symbolic link" in err[0] and target.read_bytes() == b"not yours"


def test_partial_model_is_not_packaged(tmp_path, checkpoint, capsys, lce_model):
    """Before: the first 262,144 bytes of a model (a killed export) passed the bytes 4-8 check and were copied."""
    m = tmp_path / "m.tflite"
    m.write_bytes(lce_model.read_bytes()[:100])
    rc, err = _run(capsys, ["--lce", str(m), "--checkpoint", checkpoint, "-o", str(tmp_path / "a")])
    assert rc == 2 and len(err) == 1 and "corrupt TFLite flatbuffer" in err[0], err
    assert not (tmp_path / "a" / "model_lce.tflite").exists()


def test_output_that_is_a_file_is_one_error_line(tmp_path, checkpoint, capsys, lce_model):
    """Before: ``-o <existing file>`` ended in a FileExistsError traceback."""
    f = tmp_path / "file"
    f.write_text("x")
    rc, err = _run(capsys, ["--lce", model_copy(lce_model, tmp_path / "m.tflite"), "--checkpoint", checkpoint,
                            "-o", str(f)])
    assert rc == 2 and len(err) == 1 and "is a file, not a folder" in err[0], err


def test_input_model_inside_the_target_is_not_clobbered(tmp_path, checkpoint, capsys, lce_model,
                                                          float_tflite_model):
    """--float pointing at the assets' own model_lce.tflite would be overwritten by the LCE copy first."""
    assets = tmp_path / "assets"
    assets.mkdir()
    flt = model_copy(float_tflite_model, assets / "model_lce.tflite")
    before = (assets / "model_lce.tflite").read_bytes()
    rc, err = _run(capsys, ["--lce", model_copy(lce_model, tmp_path / "l.tflite"), "--float", flt,
                            "--checkpoint", checkpoint, "-o", str(assets)])
    assert rc == 2 and "is the input file" in err[0], err
    assert (assets / "model_lce.tflite").read_bytes() == before


def _refused_custom_op(data: bytes) -> bytes:
    """The model with its ``LceBconv2d`` op code renamed to an op no runtime registers: the bounds verifier
    accepts it; the interpreter refuses to prepare it."""
    from runtimes.tflite_flatbuffer import model_bytes, model_object

    mt = model_object(data)
    for oc in mt.operatorCodes:
        if oc.customCode in (b"LceBconv2d", "LceBconv2d"):
            oc.customCode = b"LceNoSuchOp"
    return model_bytes(mt, len(data))


@pytest.mark.lce
@pytest.mark.parametrize("mutation, needle", [("zero_conv_stride", "crashed (SIGABRT)"),
                                              ("refused_custom_op", "LCE cannot load")])
def test_a_model_that_does_not_run_is_not_packaged(tmp_path, checkpoint, capsys, lce_model, float_tflite_model,
                                                   mutation, needle):
    """A mutated model that passes the bounds verifier but aborts the interpreter (a conv stride of 0) or that
    the interpreter refuses to prepare is refused with one error line naming the file; the previous assets set
    stays as it was and no temp is left. Before: android_assets checked bounds only and packaged both."""
    from runtimes.tflite_verify import verify_tflite
    from tests.robust.models import zero_conv_stride
    from tests.robust.util import leftovers

    data = lce_model.read_bytes()
    bad = zero_conv_stride(data) if mutation == "zero_conv_stride" else _refused_custom_op(data)
    verify_tflite(bad)  # the bounds check alone would let it through
    m = tmp_path / "bad.tflite"
    m.write_bytes(bad)
    assets = tmp_path / "assets"
    good = model_copy(float_tflite_model, tmp_path / "good.tflite")
    rc, err = _run(capsys, ["--float", good, "--checkpoint", checkpoint, "-o", str(assets), "--samples", "0"])
    assert rc == 0, err  # a model that loads and runs is packaged
    before = {p.name: p.read_bytes() for p in assets.iterdir()}
    assert set(before) == {"model_float.tflite", "labels.txt", "metadata.json"}

    rc, err = _run(capsys, ["--lce", str(m), "--float", good, "--checkpoint", checkpoint, "-o", str(assets),
                            "--samples", "0"])
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and str(m) in err[0], err
    assert needle in err[0] and "only models that load and run" in err[0], err
    assert {p.name: p.read_bytes() for p in assets.iterdir()} == before and not leftovers(assets)

    if mutation == "zero_conv_stride":  # a new folder is not even created (one case: each refusal is a child run)
        rc, err = _run(capsys, ["--lce", str(m), "--checkpoint", checkpoint, "-o", str(tmp_path / "new")])
        assert rc == 2 and len(err) == 1 and not (tmp_path / "new").exists(), err
