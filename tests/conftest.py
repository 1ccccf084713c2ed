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
