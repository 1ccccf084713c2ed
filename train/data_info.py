"""The data sets burn-edge knows: classes, default input size, normalisation (torch-free, so that the CLIs'
``--help`` and argument checks need no torch; :mod:`train.data` builds the data sets themselves)."""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import ConfigError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    needs_root: bool


DATASETS = {
    # digits statistics measured on the 32x32 training split (fixed, so constants are exact enough).
    "digits": DatasetInfo(10, 32, (0.3052, 0.3052, 0.3052), (0.3236, 0.3236, 0.3236), False),
    "cifar10": DatasetInfo(10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True),
    "cifar100": DatasetInfo(100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True),
    "imagefolder": DatasetInfo(1000, 224, IMAGENET_MEAN, IMAGENET_STD, True),
}
SPLITS = ("train", "test")


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]
