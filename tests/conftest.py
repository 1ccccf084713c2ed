import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

from train.models import reactnet_a  # noqa: E402


@pytest.fixture
def tiny_reactnet():
    """Seeded tiny ReActNet-A factory: tiny_reactnet(blocks=2, size=32, ...)."""

    def make(blocks: int = 2, size: int = 32, width: float = 0.25, num_classes: int = 10, seed: int = 0, **kw):
        torch.manual_seed(seed)
        return reactnet_a(width=width, input_size=size, num_classes=num_classes, num_blocks=blocks, **kw)

    return make


@pytest.fixture(scope="session")
def realistic_model():
    """Factory for the realistic full-size ReActNet-A (see ``tests/realistic.py``), cached per arguments:
    ``realistic_model(input_size=224, seed=0, **kw)``. Tests must not modify the returned model."""
    from tests.realistic import realistic_reactnet

    cache = {}

    def make(input_size: int = 224, seed: int = 0, **kw):
        key = (input_size, seed, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = realistic_reactnet(input_size, seed, **kw)
        return cache[key]

    return make
