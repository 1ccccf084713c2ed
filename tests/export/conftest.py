"""Fixtures for export tests: a briefly trained tiny checkpoint (digits) written by the training code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from train.checkpoint import reactnet_payload, save_checkpoint
from train.data import build_dataset, dataset_info, eval_transform
from train.models import reactnet_a


def _stack(ds, n=None):
    n = len(ds) if n is None else n
    xs, ys = zip(*(ds[i] for i in range(n)))
    return torch.stack(xs), torch.tensor(ys)


@pytest.fixture(scope="session")
def digits_test():
    """The digits test split (450, 3, 32, 32) normalised, and labels."""
    info = dataset_info("digits")
    return _stack(build_dataset("digits", "test", transform=eval_transform(info.input_size, info.mean, info.std)))


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory):
    """A 2-block width-0.25 stage-2 ReActNet trained 60 supervised steps on digits, saved as a checkpoint.

    Returns (path, model in eval mode, test accuracy).
    """
    info = dataset_info("digits")
    xtr, ytr = _stack(build_dataset("digits", "train", transform=eval_transform(info.input_size, info.mean,
                                                                                  info.std)))
    torch.manual_seed(0)
    model = reactnet_a(width=0.25, input_size=info.input_size, num_classes=10, num_blocks=2)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):
        idx = torch.randint(len(xtr), (64,), generator=g)
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, reactnet_payload(model, step=60, optimizer=opt.state_dict(),
                                           config={"dataset": "digits", "method": "supervised"}))
    return path, model
