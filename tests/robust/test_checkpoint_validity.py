"""One definition of a loadable checkpoint (train.checkpoint.check_model_values + the CRC check of
read_checkpoint), applied by every command that loads one: NaN weights, negative or infinite BatchNorm
variances, huge values and bit-flipped records give one ``error:`` line and exit 2. Before: train.evaluate
reported chance accuracy with exit 0, export.verify PASSed an infinite BN variance, to_lce exported a variance
of -5 into a model whose every output was Inf."""

from __future__ import annotations

import struct
import zipfile

import pytest
import torch

from common.errors import CheckpointError
from tests.robust.util import assert_one_error, run_main, tiny_checkpoint
from train.checkpoint import model_from_checkpoint


def _set(key, value):
    def edit(sd):
        sd[key] = sd[key].clone()
        sd[key].view(-1)[0] = value
    return edit


BAD = {
    "nan weight": (_set("blocks.0.conv3x3.weight", float("nan")), "NaN/Inf"),
    "negative BN variance": (_set("blocks.0.bn1.running_var", -5.0), "cannot be negative"),
    "infinite BN variance": (_set("stem.bn.running_var", float("inf")), "NaN/Inf"),
    "huge value": (_set("head.weight", 3e36), "bit-flipped"),
}


def _bit_flipped(path):
    """Flip one bit inside the first tensor record of a torch zip checkpoint (torch.load does not notice)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size >= 8)
    n, e = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    data[info.header_offset + 30 + n + e + 2] ^= 0x10
    path.write_bytes(bytes(data))
    torch.load(path, weights_only=True)  # still loads: the CRC check is ours
    return path


@pytest.fixture(params=[*BAD, "bit flip"])
def bad_ckpt(request, tmp_path):
    if request.param == "bit flip":
        return _bit_flipped(tiny_checkpoint(tmp_path / "c.pt")), "CRC"
    edit, needle = BAD[request.param]
    return tiny_checkpoint(tmp_path / "c.pt", edit=edit), needle


def test_loader_refuses(bad_ckpt):
    path, needle = bad_ckpt
    with pytest.raises(CheckpointError, match=needle):
        model_from_checkpoint(path)


def test_evaluate_refuses(bad_ckpt, tmp_path):
    from train import evaluate

    path, needle = bad_ckpt
    rc, _, err = run_main(evaluate.main, [str(path), "--protocol", "knn", "--json", str(tmp_path / "e.json")])
    assert rc == 2
    assert_one_error(err, needle)
    assert not (tmp_path / "e.json").exists()


def test_pretrain_init_refuses(tmp_path):
    """``train.pretrain --init`` (a previous stage) loads through the same check."""
    from train.checkpoint import read_checkpoint
    from train.methods.common import load_init
    from train.models.reactnet import ReActNetA, ReActNetConfig

    path = tiny_checkpoint(tmp_path / "c.pt", edit=BAD["negative BN variance"][0])
    student = ReActNetA(ReActNetConfig(**read_checkpoint(path)["arch"]))
    with pytest.raises(CheckpointError, match="cannot be negative"):
        load_init(str(path), student, {}, "supervised")


@pytest.mark.parametrize("cli", ["to_onnx", "to_lce", "verify"])
def test_export_clis_refuse(bad_ckpt, tmp_path, cli):
    import importlib

    path, needle = bad_ckpt
    main = importlib.import_module(f"export.{cli}").main
    argv = ([str(path), "--runtimes", "onnxruntime", "--limit", "2"] if cli == "verify" else
            [str(path), "-o", str(tmp_path / ("m.onnx" if cli == "to_onnx" else "m.tflite"))])
    rc, _, err = run_main(main, argv)
    assert rc == 2
    assert_one_error(err, needle)
    assert not list(tmp_path.glob("m.*"))


def test_a_valid_checkpoint_still_loads(tmp_path):
    m = model_from_checkpoint(tiny_checkpoint(tmp_path / "c.pt"))
    assert m.cfg.width == 0.25
