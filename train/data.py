"""Data sets and augmentations.

* ``digits`` -- the embedded default: scikit-learn's 8x8 handwritten digits (1,797 images, shipped
  inside scikit-learn, so it works offline), upsampled bilinearly to 3 x S x S (default S = 32),
  with a fixed stratified split (1,347 train / 450 test, seed 0).
* ``cifar10`` / ``cifar100`` -- torchvision's CIFAR from a local ``root`` (never downloaded here).
* ``imagefolder`` -- any ``root/{train,val}/<class>/<image>`` tree (ImageNet layout; ``test/`` works for
  ``val/``). Evaluation refuses a tree without a test split unless told ``test_on_train``; an unreadable
  image stops the run with an error naming it (:class:`UnreadableImageError`), never a silent skip.

Two-view augmentations (:class:`TwoViews`, ``augment``):

* ``"official"`` -- the official BURN config (react_burn_stage*.py): RandomResizedCrop (bicubic),
  horizontal flip, colour jitter (0.4, 0.4, 0.4, 0.1) with p = 0.6, grayscale p = 0.2, Gaussian blur
  sigma in [0.1, 2] with p = 0.2 on *both* views, no solarisation.
* ``"byol"`` -- BYOL's asymmetric pipeline: jitter p = 0.8, grayscale p = 0.2, blur p = 1.0 on view 1
  and 0.1 on view 2 (what burn-edge used before; *not* the official BURN pipeline).

For small inputs (S <= 64) the crop scale starts at 0.2 instead of 0.08 and the blur kernel is ~10 % of
S, as is usual for CIFAR-sized SSL; ``crop_min_scale`` (``--crop-min-scale``) sets it explicitly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T

from common.errors import ConfigError, DatasetError
from train.data_info import (  # noqa: F401  (the torch-free table, re-exported: --help reads it without torch)
    DATASETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SPLITS,
    DatasetInfo,
    dataset_info,
)


def _digits_arrays(size: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    x = (x * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()  # (N, 3, S, S) uint8
    idx_tr, idx_te = train_test_split(np.arange(len(x)), test_size=450, stratify=d.target, random_state=0)
    return x[idx_tr], d.target[idx_tr], x[idx_te], d.target[idx_te]


class DigitsDataset(Dataset):
    """scikit-learn digits as uint8 images (3, S, S); item = (transform(image), label in 0..9)."""

    classes = [str(i) for i in range(10)]

    def __init__(self, split: str = "train", transform=None, size: int = 32):
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        xtr, ytr, xte, yte = _digits_arrays(size)
        self.images, labels = (xtr, ytr) if split == "train" else (xte, yte)
        self.targets = [int(t) for t in labels]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        img = self.images[i]
        return (self.transform(img) if self.transform is not None else img), self.targets[i]


def build_dataset(name: str, split: str = "train", root: str | None = None, transform=None, *,
                  test_on_train: bool = False) -> Dataset:
    """Return a data set; errors name the missing/empty folder and the expected layout.

    imagefolder: see :func:`image_folder_split` (no test split -> DatasetError unless ``test_on_train``);
    images are decoded by :func:`read_image` (an unreadable file stops with its name).
    """
    info = dataset_info(name)
    if name == "digits":
        return DigitsDataset(split, transform, size=info.input_size)
    if root is None:
        raise DatasetError(f"data set {name!r} needs --data-root (a local folder; nothing is downloaded)")
    root_p = Path(root)
    if not root_p.is_dir():
        raise DatasetError(f"data root does not exist: {root_p}")
    if name in ("cifar10", "cifar100"):
        import torchvision

        cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
        try:
            return cls(str(root_p), train=(split == "train"), transform=transform, download=False)
        except RuntimeError as e:
            raise DatasetError(f"{name} not found under {root_p} ({e}); expected the python-version "
                               f"archive extracted there, e.g. {root_p}/cifar-10-batches-py") from None
    import torchvision

    folder = image_folder_split(root_p, split, test_on_train=test_on_train)
    try:
        return torchvision.datasets.ImageFolder(str(folder), transform=transform, loader=read_image)
    except (FileNotFoundError, RuntimeError) as e:
        raise DatasetError(f"no images found in {folder} (expected {folder}/<class>/<image>.jpg): "
                           f"{str(e).splitlines()[0]}") from None


def class_count(ds) -> int | None:
    """Number of distinct labels of a data set with ``targets`` (or a Subset of one); None if unknown."""
    from torch.utils.data import Subset

    base, idx = (ds.dataset, ds.indices) if isinstance(ds, Subset) else (ds, None)
    targets = getattr(base, "targets", None)
    if targets is None:
        return None
    targets = list(targets)
    return len({int(targets[i]) for i in idx} if idx is not None else {int(t) for t in targets})


def require_classes(ds, where: str, minimum: int = 2) -> None:
    """DatasetError unless ``ds`` has at least ``minimum`` classes: training with labels on one class learns
    nothing and reports a perfect loss."""
    n = class_count(ds)
    if n is not None and n < minimum:
        raise DatasetError(f"{where} has {n} class{'es' if n != 1 else ''}; training with labels needs at least "
                           f"{minimum} (one sub-folder per class: <root>/train/<class>/<image>)")


TEST_SPLIT_DIRS = ("val", "test")


def image_folder_split(root: Path, split: str, *, test_on_train: bool = False) -> Path:
    """The folder of ``split`` in an image-folder tree: ``root/train`` (or ``root`` itself when it has no
    ``train/``) for training; ``root/val`` or ``root/test`` for testing. A tree without a test split is a
    DatasetError unless ``test_on_train`` (then the training images are the test set, and the caller says so):
    silently testing on the training images reports a meaningless accuracy."""
    train = root / "train"
    if split == "train":
        return train if train.is_dir() else root
    for name in TEST_SPLIT_DIRS:
        if (root / name).is_dir():
            return root / name
    if test_on_train:
        return train if train.is_dir() else root
    raise DatasetError(f"{root} has no test split ({' or '.join(f'{root}/{n}' for n in TEST_SPLIT_DIRS)}); "
                       "evaluating would test on the training images. Add a val/<class>/ folder, or pass "
                       "--test-on-train to accept that explicitly")


class UnreadableImageError(DatasetError):
    """An image file PIL cannot decode (truncated or corrupt JPEG, not an image). Training and evaluation stop
    with this error naming the file; nothing is skipped silently.

    DataLoader worker processes re-raise an exception as ``type(msg with the worker traceback)``; the
    constructor keeps only the original one-line message so the CLI still prints one ``error:`` line.
    """

    def __init__(self, message: str):
        if "Original Traceback" in message:
            tail = [ln for ln in message.splitlines() if "UnreadableImageError: " in ln]
            if tail:
                message = tail[-1].split("UnreadableImageError: ", 1)[1]
        super().__init__(message)


def read_image(path: str):
    """PIL loader for ImageFolder that decodes the whole image now and names the file if it cannot."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UnreadableImageError(f"cannot read image {path}: {e} (remove or replace the file)") from None


# ----------------------------------------------------------------------------------- transforms

def _to_float(mean, std) -> list:
    return [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]


def eval_transform(size: int, mean, std, resize: bool = False) -> T.Compose:
    """Deterministic preprocessing: (optionally resize to S/0.875 then centre-crop S), scale to [0,1], normalise."""
    ops = [T.Resize(int(round(size / 0.875)), antialias=True), T.CenterCrop(size)] if resize else []
    return T.Compose(ops + _to_float(mean, std))


def view_transform(size: int, mean, std, blur_p: float, jitter_p: float = 0.8,
                   crop_min_scale: float = 0.0, hflip: bool = True) -> T.Compose:
    """One augmentation view (see module docstring): (3, S, S) uint8 image -> normalised float tensor.
    ``crop_min_scale``: smallest crop area fraction of RandomResizedCrop (0 = 0.2 for S <= 64, else 0.08);
    ``hflip``: random horizontal flip (digits are not mirror-symmetric classes)."""
    small = size <= 64
    k = max(3, int(0.1 * size) // 2 * 2 + 1)
    return T.Compose([
        T.ToImage(),
        T.RandomResizedCrop(size, scale=(crop_min_scale or (0.2 if small else 0.08), 1.0),
                            interpolation=T.InterpolationMode.BICUBIC, antialias=True),
        T.RandomHorizontalFlip(0.5 if hflip else 0.0),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=jitter_p),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(k, sigma=(0.1, 2.0))], p=blur_p),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(mean, std),
    ])


# (jitter p, blur p view 1, blur p view 2) per two-view pipeline
AUGMENTS = {"official": (0.6, 0.2, 0.2), "byol": (0.8, 1.0, 0.1)}


class TwoViews:
    """image -> (view1, view2), two independent augmentations of the ``augment`` pipeline."""

    def __init__(self, size: int, mean, std, augment: str = "official", crop_min_scale: float = 0.0,
                 hflip: bool = True):
        if augment not in AUGMENTS:
            raise ConfigError(f"unknown augmentation {augment!r}; choose one of {sorted(AUGMENTS)}")
        if not 0.0 <= crop_min_scale <= 1.0:
            raise ConfigError(f"crop_min_scale must be in [0, 1] (0 = automatic), got {crop_min_scale}")
        jitter_p, blur1, blur2 = AUGMENTS[augment]
        self.t1 = view_transform(size, mean, std, blur1, jitter_p, crop_min_scale, hflip)
        self.t2 = view_transform(size, mean, std, blur2, jitter_p, crop_min_scale, hflip)

    def __call__(self, img):
        return self.t1(img), self.t2(img)


def train_transform(size: int, mean, std) -> T.Compose:
    """Light supervised augmentation: random resized crop (0.5-1) + flip."""
    return T.Compose([T.ToImage(), T.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True),
                      T.RandomHorizontalFlip()] + _to_float(mean, std)[1:])
