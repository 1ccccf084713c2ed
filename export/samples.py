"""Real images for equivalence checks, preprocessed exactly as training's eval transform.

``load_inputs(spec, size, mean, std)`` -> ``(x, names)`` with x: (N, 3, size, size) float32, normalised.

spec:
* ``"digits"``  -- the embedded digits test split (resized only if ``size`` != 32),
* ``"samples"`` -- the 16 photos bundled inside scikit-image (astronaut, coffee, chelsea, ...; offline),
* ``"noise"``   -- seeded N(0, 1) tensors (only useful for stress tests; not real images),
* a folder     -- every .jpg/.jpeg/.png/.bmp/.webp in it (sorted), resized to size/0.875 and centre-cropped.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from common.errors import BurnEdgeError, DatasetError
from common.limits import require_fits
from train.data import build_dataset, eval_transform

SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "immunohistochemistry",
                 "hubble_deep_field", "retina", "clock", "moon", "brick", "grass", "gravel", "cell", "colorwheel")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_PIXELS = 1 << 26  # 67 megapixels: a header claiming more is refused before decoding (decompression bombs)


def _uint8_chw(img: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) uint8 -> (3, H, W) uint8 (gray replicated, alpha dropped)."""
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(img[:, :, :3])).permute(2, 0, 1).contiguous()


def _sample_photos() -> list[tuple[str, torch.Tensor]]:
    import skimage.data

    return [(name, _uint8_chw(getattr(skimage.data, name)())) for name in SAMPLE_PHOTOS]


def _folder_images(folder: Path) -> list[tuple[str, torch.Tensor]]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    out = []
    for p in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS refuses those
                with Image.open(p) as im:
                    w, h = im.size
                    if w * h > MAX_PIXELS:
                        raise DatasetError(f"image {p} claims {w}x{h} pixels, more than the {MAX_PIXELS:,} an "
                                           "input image may have")
                    require_fits(w * h * 3 * 2, f"decoding image {p} ({w}x{h})")
                    out.append((p.name, _uint8_chw(np.asarray(im.convert("RGB")))))
        except BurnEdgeError:
            raise
        except (Exception, MemoryError) as e:  # PIL: OSError, ValueError, SyntaxError, DecompressionBombError...
            msg = " ".join(str(e).split())[:200]
            raise DatasetError(f"cannot read image {p}: {type(e).__name__}: {msg}") from None
    return out


def load_inputs(spec: str, size: int, mean, std, limit: int | None = None,
                seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Preprocessed inputs (N, 3, size, size) float32 and one name per image (see module docstring)."""
    if spec == "noise":
        g = torch.Generator().manual_seed(seed)
        n = limit or 8
        return torch.randn(n, 3, size, size, generator=g), [f"noise{i}" for i in range(n)]
    if spec == "digits":
        ds = build_dataset("digits", "test")
        n = len(ds) if limit is None else min(limit, len(ds))
        items = [(f"digit{i}_label{ds.targets[i]}", ds.images[i]) for i in range(n)]
        tf = eval_transform(size, mean, std, resize=False)
        if size != ds.images.shape[-1]:
            from torchvision.transforms import v2 as T

            tf = T.Compose([T.Resize(size, antialias=True), tf])
    else:
        if spec == "samples":
            items = _sample_photos()
        else:
            folder = Path(spec)
            if not folder.is_dir():
                raise DatasetError(f"--images must be digits, samples, noise or a folder; {spec!r} is none")
            items = _folder_images(folder)
        items = items[:limit] if limit else items
        tf = eval_transform(size, mean, std, resize=True)
    x = torch.stack([tf(img) for _, img in items]).float()
    return x, [name for name, _ in items]
