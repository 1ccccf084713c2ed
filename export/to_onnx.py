"""Export a burn-edge checkpoint (or an official ReActNet-A state dict) to ONNX.

    python -m export.to_onnx ckpt.pt [-o model.onnx] [--model-output logits|features] [--input-size N]

The graph takes ``input`` (batch, 3, S, S) float32 NCHW, normalised with the mean/std stored in the
metadata (``burn_edge.mean`` / ``burn_edge.std``), batch dynamic; it outputs ``logits`` or ``features``.
Binary semantics are PyTorch's: sign(0) = +1 (``Where(x >= t, 1, -1)``), weights alpha*sign(W) constants.
Stages: load -> build -> check (onnxruntime vs PyTorch on a random batch) -> save.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common.cli import parse_args
from common.errors import BurnEdgeError
from export.common import OUTPUTS, make_metadata
from export.errors import EquivalenceError
from export.loading import add_arch_args, load_stage, prepare_outputs
from export.stages import Checklist

CHECK_RTOL = 1e-4  # max |onnx - torch| / max |torch| on the random check batch


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.to_onnx", description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="burn-edge checkpoint (.pt) or official ReActNet-A state dict")
    p.add_argument("-o", "--out", default=None, help="output .onnx path (default: <checkpoint>.onnx beside it)")
    p.add_argument("--model-output", dest="output", choices=OUTPUTS, default="logits",
                   help="graph output: logits (N, classes) or pooled features (N, C) (default logits)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the onnxruntime-vs-PyTorch check on a random batch (default: check)")
    add_arch_args(p)
    return p


def check_with_onnxruntime(proto_bytes: bytes, model, output: str, size: int, seed: int = 0) -> float:
    """Run onnxruntime and PyTorch on one random (2, 3, S, S) batch; return max|diff| / max|torch|."""
    import torch

    from runtimes.session import open_session

    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = model.forward_features(x) if output == "features" else model(x)
    got = open_session(proto_bytes, "onnxruntime", what="the exported ONNX graph").run({"input": x.numpy()})
    got = next(iter(got.values()))
    ref = ref.numpy()
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))


def main(argv=None) -> int:
    args = parse_args(get_args_parser(), argv)  # robust: one-line argparse errors (common.cli)
    cl = Checklist()
    try:
        out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")
        prepare_outputs(args.checkpoint, out)
        lm = load_stage(cl, args)
        cfg = lm.model.cfg
        from export.onnx_graph import build_onnx, save_onnx

        with cl.stage("build", f"ONNX graph, output {args.output}"):
            meta = make_metadata(lm.model, output=args.output, layout="NCHW", kind="onnx", mean=lm.mean,
                                 std=lm.std, source_sha256=lm.sha256)
            proto = build_onnx(lm.model, output=args.output, metadata=meta)
            data = proto.SerializeToString()
        if not args.no_check:
            with cl.stage("check", "onnxruntime vs PyTorch, random batch of 2"):
                rel = check_with_onnxruntime(data, lm.model, args.output, cfg.input_size)
                cl.note(f"max |onnx - torch| / max |torch| = {rel:.2e} (limit {CHECK_RTOL:g})")
                if not np.isfinite(rel) or rel > CHECK_RTOL:
                    raise EquivalenceError(f"onnxruntime differs from PyTorch by {rel:.2e} relative "
                                           f"(limit {CHECK_RTOL:g})")
        with cl.stage("save", str(out)):
            save_onnx(proto, out)
            cl.note(f"{out.stat().st_size:,} bytes")
    except BurnEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
