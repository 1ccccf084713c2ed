import pytest
import torch

from common.errors import ConfigError, DatasetError
from train.data import TwoViews, build_dataset, dataset_info, eval_transform


def test_digits_offline_shapes_and_split():
    tr, te = build_dataset("digits", "train"), build_dataset("digits", "test")
    assert (len(tr), len(te)) == (1347, 450)
    img, label = tr[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.uint8
    assert set(tr.targets) == set(range(10)) == set(te.targets)
    assert torch.equal(img[0], img[1])  # grayscale replicated
    # Fixed split: building it again gives the same images.
    assert torch.equal(build_dataset("digits", "test").images, te.images)


def test_digits_normalisation_constants_match_data():
    info = dataset_info("digits")
    x = build_dataset("digits", "train").images.float() / 255
    assert abs(x.mean().item() - info.mean[0]) < 2e-3
    assert abs(x.std().item() - info.std[0]) < 2e-3


def test_transforms():
    info = dataset_info("digits")
    ds = build_dataset("digits", "test", transform=eval_transform(32, info.mean, info.std))
    x, _ = ds[3]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    v1, v2 = TwoViews(32, info.mean, info.std)(build_dataset("digits", "train").images[0])
    assert v1.shape == v2.shape == (3, 32, 32) and not torch.equal(v1, v2)


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown data set"):
        build_dataset("mnist")
    with pytest.raises(DatasetError, match="--data-root"):
        build_dataset("cifar10")
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("imagefolder", root=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        build_dataset("imagefolder", root=str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        build_dataset("cifar10", root=str(tmp_path / "empty"))
