"""How sensitive is a deep binary net to a rounding-sized input change? (why verify compares stage by stage)

    python benchmarks/binary_sensitivity.py [--input-size 224] [--images 16] [--eps 1e-6] [--seeds 0 1 2]

For the realistic full-size ReActNet-A (``tests/realistic.py``: random weights, realistic BN statistics)
on the scikit-image sample photos, multiply the input by (1 + eps * noise), noise ~ N(0, 1), and compare
PyTorch with PyTorch: max |d logits| / max |logits|, mean centred cosine, top-1 agreement (95 % Wilson
interval), and the binariser bits that flip in each block of the chain. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys

import _bench  # benchmarks/_bench.py: the checkout on sys.path, TensorFlow settings
import torch


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = _bench.args_parser(__doc__, add_help)
    p.add_argument("--input-size", type=int, default=224, help="input resolution (default 224)")
    p.add_argument("--images", type=int, default=16, help="sample photos to use, 1..16 (default 16)")
    p.add_argument("--eps", type=float, default=1e-6, help="relative input perturbation (default 1e-6)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="model seeds (default 0)")
    return p


@torch.no_grad()
def flipped_bits(model, x, x2) -> list[int]:
    """Bits (binariser outputs) that differ between the two inputs' chained runs, per block."""
    res, h, h2 = [], model.stem(x), model.stem(x2)
    for blk in model.blocks:
        e, e2 = blk.trace(h), blk.trace(h2)
        res.append(sum(int((e[b] != e2[b]).sum()) for b in ("b1", "b2")))
        h, h2 = e["out"], e2["out"]
    return res


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from export.samples import load_inputs
    from export.verify import centred_cosine, wilson_interval
    from tests.realistic import realistic_reactnet
    from train.data import IMAGENET_MEAN, IMAGENET_STD

    x, _ = load_inputs("samples", args.input_size, IMAGENET_MEAN, IMAGENET_STD, limit=args.images)
    print(f"ReActNet-A {args.input_size}px, {len(x)} photos, input x (1 + {args.eps:g} * N(0,1))")
    for seed in args.seeds:
        model = realistic_reactnet(args.input_size, seed)
        g = torch.Generator().manual_seed(1000 + seed)
        x2 = x * (1 + args.eps * torch.randn(x.shape, generator=g))
        with torch.no_grad():
            a, b = model(x).numpy(), model(x2).numpy()
        rel = float(abs(a - b).max() / abs(a).max())
        agree = int((a.argmax(1) == b.argmax(1)).sum())
        lo, hi = wilson_interval(agree, len(x))
        flips = flipped_bits(model, x, x2)
        first = next((f"blocks.{i}" for i, n in enumerate(flips) if n), "none")
        print(f"seed {seed}: max|d logits|/max|logits| {rel:.2e}, centred cosine {centred_cosine(a, b):.4f}, "
              f"top-1 agreement {agree}/{len(x)} (95% CI {lo:.0%}-{hi:.0%}); first flipped block {first}; "
              f"flipped bits per block {flips}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
