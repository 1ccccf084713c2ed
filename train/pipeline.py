"""The whole burn-edge chain on the embedded default (README's first command).

For now: train the tiny binary ReActNet-A (stage 2: binary weights and activations) with labels on
the embedded digits data set and print its test accuracy. Later phases (teacher, BURN, export,
equivalence, benchmarks) plug in here.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from train.data import build_dataset, dataset_info, eval_transform, train_transform
from train.errors import BurnEdgeError
from train.models import reactnet_a


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    p.add_argument("--width", type=float, default=0.25, help="ReActNet-A width multiplier (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return p


@torch.no_grad()
def accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / total


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        torch.manual_seed(args.seed)
        info = dataset_info("digits")
        train_ds = build_dataset("digits", "train", transform=train_transform(info.input_size, info.mean, info.std))
        test_ds = build_dataset("digits", "test", transform=eval_transform(info.input_size, info.mean, info.std))
        train_dl = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True, drop_last=True)
        test_dl = DataLoader(test_ds, batch_size=256)
        model = reactnet_a(width=args.width, input_size=info.input_size, num_classes=info.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * len(train_dl))
        t0 = time.time()
        for epoch in range(args.epochs):
            model.train()
            bar = tqdm(train_dl, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, disable=None)
            for x, y in bar:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.set_postfix(loss=f"{loss.item():.3f}")
        acc = accuracy(model, test_dl)
        print(f"binary ReActNet-A (width {args.width}) on digits: test accuracy {acc:.1%} "
              f"after {args.epochs} epochs in {time.time() - t0:.0f}s")
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
