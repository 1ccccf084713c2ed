"""Data-set inputs that used to give a meaningless number or an anonymous crash (issue #12 items 6, 7)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from common.errors import DatasetError
from train import evaluate, pretrain
from train.checkpoint import reactnet_payload, save_checkpoint
from train.data import UnreadableImageError, build_dataset


def _image_tree(root, splits=("train",), classes=("a", "b"), n=4, size=24):
    rng = np.random.default_rng(0)
    for split in splits:
        for c in classes:
            d = root / split / c if split else root / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def _truncated_jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def test_test_split_is_required(tmp_path):
    root = _image_tree(tmp_path / "only_train")
    assert len(build_dataset("imagefolder", "train", root=str(root))) == 8
    with pytest.raises(DatasetError, match="no test split .*--test-on-train"):
        build_dataset("imagefolder", "test", root=str(root))
    flat = _image_tree(tmp_path / "flat", splits=("",))
    with pytest.raises(DatasetError, match="no test split"):
        build_dataset("imagefolder", "test", root=str(flat))
    assert len(build_dataset("imagefolder", "test", root=str(flat), test_on_train=True)) == 8
    both = _image_tree(tmp_path / "both", splits=("train", "val"), n=2)
    assert build_dataset("imagefolder", "test", root=str(both)).root.endswith("val")


def test_evaluate_refuses_a_root_without_test_split(tmp_path, tiny_reactnet, capsys):
    """Before: the root itself became the test set (one class named ``train``), linear top-1 56.25 %, exit 0."""
    root = _image_tree(tmp_path / "data")
    ckpt = save_checkpoint(tmp_path / "c.pt", reactnet_payload(tiny_reactnet(blocks=1)))
    argv = [str(ckpt), "--dataset", "imagefolder", "--data-root", str(root), "--protocol", "knn",
            "--knn-k", "2"]
    assert evaluate.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no test split" in err[0]
    assert evaluate.main(argv + ["--test-on-train"]) == 0
    assert "testing on the training images" in capsys.readouterr().err


def test_unreadable_image_is_named_through_a_worker(tmp_path):
    root = _image_tree(tmp_path / "d", n=2)
    bad = _truncated_jpeg(root / "train" / "a" / "broken.jpg")
    ds = build_dataset("imagefolder", "train", root=str(root))
    with pytest.raises(UnreadableImageError, match="broken.jpg"):
        [ds[i] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=len(ds), num_workers=1, collate_fn=lambda b: b)
    with pytest.raises(UnreadableImageError) as e:
        next(iter(loader))
    msg = str(e.value)
    assert str(bad) in msg and "\n" not in msg and "Traceback" not in msg


def test_training_stops_naming_the_unreadable_image(tmp_path, capsys):
    """Before: ``OSError: Truncated File Read`` from a DataLoader worker, no file name, traceback."""
    root = _image_tree(tmp_path / "d", n=3, size=32)
    _truncated_jpeg(root / "train" / "b" / "cut.jpg")
    argv = ["--method", "supervised", "--dataset", "imagefolder", "--data-root", str(root), "--width", "0.25",
            "--num-blocks", "1", "--epochs", "1", "--batch-size", "7", "--num-workers", "1",
            "--out", str(tmp_path / "run"), "--device", "cpu"]
    torch.manual_seed(0)
    assert pretrain.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot read image ") and "cut.jpg" in err[-1]
    assert not any("Traceback" in ln for ln in err)
