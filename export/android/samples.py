"""Sample images bundled for the app's gallery: the digits test split, one image per class in class order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.files import ArtefactSet
from export.android.contract import SAMPLES_DIR
from export.errors import AndroidAssetsError


def digits_samples(size: int, per_class: int = 1, limit: int = 10) -> list[tuple[np.ndarray, str]]:
    """Test-split digits as (uint8 (S, S, 3), label): the first image of each class in class order, then the
    second of each, ... (``per_class`` rounds), at most ``limit`` images."""
    from train.data import DigitsDataset

    ds = DigitsDataset("test", size=size)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(ds.targets):
        by_class.setdefault(t, []).append(i)
    order = [by_class[c][r] for r in range(per_class) for c in sorted(by_class) if r < len(by_class[c])]
    return [(ds.images[i].permute(1, 2, 0).numpy().copy(), DigitsDataset.classes[ds.targets[i]])  # (S, S, 3)
            for i in order[:limit]]


def safe_label(label: str) -> str:
    """An ASCII file-name fragment for a label (APK asset names are safest in ASCII)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in label)[:40] or "x"


def write_samples(assets_dir: Path, samples: Sequence[tuple[np.ndarray, str]], hw: tuple[int, int],
                  out: ArtefactSet) -> list[dict]:
    """Stage ``samples`` ((uint8 (H, W, 3), label) pairs) as ``samples/NN_<label>.png`` in the artefact set
    ``out`` and schedule every other ``samples/*.png`` for removal at its commit; return the metadata entries."""
    sample_dir = assets_dir / SAMPLES_DIR
    if sample_dir.is_dir():
        for old in sample_dir.glob("*.png"):
            out.remove(old)  # deleted only once the new set is in place (a staged name is kept)
    if not samples:
        return []
    from PIL import Image

    entries = []
    for i, (img, label) in enumerate(samples):
        img = np.asarray(img)
        if img.dtype != np.uint8 or img.shape != (hw[0], hw[1], 3):
            raise AndroidAssetsError(f"sample {i} must be uint8 {hw[0]}x{hw[1]}x3, got {img.dtype} {img.shape}")
        name = f"{SAMPLES_DIR}/{i:02d}_{safe_label(str(label))}.png"
        out.save(assets_dir / name, lambda tmp, img=img: Image.fromarray(img, "RGB").save(tmp, format="PNG"))
        entries.append({"file": name, "label": str(label)})
    return entries
