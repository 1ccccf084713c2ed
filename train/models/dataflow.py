"""A module's forward pass written once, as data, and run by every backend.

A :class:`Node` names one step: ``out = op(*inputs)``, where ``op`` is a child module path of the owning
module (``"conv3x3"``, ``"conv1x1.0"``) or a primitive (``"add"``: elementwise sum of two values,
``"concat"``: concatenation on the channel axis). Values are named; the module's input is ``"x"`` and the
last node's ``out`` is its output. PyTorch's ``forward`` (:func:`run_torch`), the ONNX and LCE exporters
and the equivalence harness all interpret the same node list, so the block's data flow exists once.

Binarisers (``RSign``) are the points where float rounding can change a bit: :func:`presign_points`
lists them with the name of the value each one reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

INPUT = "x"
PRIMITIVES = ("add", "concat")


@dataclass(frozen=True)
class Node:
    """``out = op(*inputs)``; op is a child module path or one of :data:`PRIMITIVES`."""

    out: str
    op: str
    inputs: tuple[str, ...]


def run(module: nn.Module, nodes: tuple[Node, ...], x: Any, *, call: Callable[[str, nn.Module, Any], Any],
        add: Callable[[Any, Any], Any], concat: Callable[[list], Any]) -> dict[str, Any]:
    """Interpret ``nodes`` on input ``x``; returns every named value (``"x"`` included).

    call(path, child, value) applies child module ``path``; add / concat implement the primitives in the
    backend's tensor type (concat is on the channel axis: 1 for NCHW, -1 for NHWC).
    """
    env = {INPUT: x}
    for n in nodes:
        args = [env[i] for i in n.inputs]
        if n.op == "add":
            env[n.out] = add(*args)
        elif n.op == "concat":
            env[n.out] = concat(args)
        else:
            env[n.out] = call(n.op, module.get_submodule(n.op), *args)
    return env


def run_torch(module: nn.Module, nodes: tuple[Node, ...], x: torch.Tensor,
              sign_inputs: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """PyTorch interpretation (NCHW). ``sign_inputs`` {binariser path: tensor} feeds a binariser another
    input than the data flow's own value (the harness's replay of a runtime's bits); everything else,
    residual paths included, keeps PyTorch's values."""
    sign_inputs = sign_inputs or {}

    def call(path, m, v):
        return m(sign_inputs.get(path, v))

    return run(module, nodes, x, call=call, add=torch.add, concat=lambda vs: torch.cat(vs, 1))


def presign_points(module: nn.Module, nodes: tuple[Node, ...], binariser: type) -> tuple[tuple[str, str], ...]:
    """``(binariser path, name of the value it reads)`` for every node whose module is a ``binariser``."""
    return tuple((n.op, n.inputs[0]) for n in nodes
                 if n.op not in PRIMITIVES and isinstance(module.get_submodule(n.op), binariser))
