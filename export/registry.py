"""Per-module-type converter registries that walk the training module tree.

Both exporters (``export.onnx_graph`` and ``export.lce``) own one :class:`ConverterRegistry`. A
converter is registered per ``nn.Module`` type::

    REGISTRY = ConverterRegistry("ONNX")

    @REGISTRY.converter(BinaryConv2d)
    def _bconv(m: BinaryConv2d, x, ctx):   # x: the target framework's tensor (ONNX value name / Keras tensor)
        ...
        return y

``ctx.convert(child, x, name)`` recurses into a child module (by attribute name, so errors carry the
dotted module path, e.g. ``blocks.7.conv3x3``). There is no second layer plan: ``ReActNetA``'s converters
walk ``model.stages()``, ``Block``'s walk ``Block.dataflow()`` (:meth:`WalkContext.convert_dataflow`), and
``Stem`` / ``nn.Sequential`` convert their children in forward order. A type with no converter raises
:class:`UnsupportedModuleError`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from export.errors import UnsupportedModuleError
from train.models.dataflow import run

# Pure containers: no forward of their own; the parent converter indexes them.
CONTAINERS: tuple[type, ...] = (nn.ModuleList,)


class ConverterRegistry:
    """Maps exact module types to converter functions ``fn(module, x, ctx) -> y``."""

    def __init__(self, target: str):
        self.target = target
        self._fns: dict[type, Callable] = {}

    def converter(self, *types: type) -> Callable:
        def register(fn: Callable) -> Callable:
            for t in types:
                self._fns[t] = fn
            return fn
        return register

    def registered(self) -> list[type]:
        return list(self._fns)

    def lookup(self, module: nn.Module, path: str) -> Callable:
        fn = self._fns.get(type(module))
        if fn is None:
            names = sorted(f"{t.__module__.split('.')[-1]}.{t.__qualname__}" for t in self._fns)
            raise UnsupportedModuleError(path, type(module), names, self.target)
        return fn


class WalkContext:
    """State of one walk: the current module path plus exporter-specific state (subclass it).

    ``presigns`` collects, for every module converted with :meth:`convert_dataflow`, the target tensor each
    binariser reads, keyed ``"<module path>:<value name>"`` (e.g. ``"blocks.3:y"``); ``export.verify``
    makes them model outputs to replay the runtime's bits.
    """

    def __init__(self, registry: ConverterRegistry):
        self.registry = registry
        self.path = ""
        self.presigns: dict[str, Any] = {}

    def convert(self, module: nn.Module, x: Any, name: str | None = None) -> Any:
        """Convert ``module`` applied to ``x``; ``name`` is its attribute name under the current path."""
        parent = self.path
        path = parent if name is None else (f"{parent}.{name}" if parent else name)
        fn = self.registry.lookup(module, path)
        self.path = path
        try:
            return fn(module, x, self)
        finally:
            self.path = parent

    def convert_dataflow(self, module: nn.Module, x: Any, *, add: Callable, concat: Callable) -> Any:
        """Convert a module that describes itself with ``dataflow()`` / ``presign_points()`` (a ReActNet
        ``Block``): children through their converters, primitives through ``add(a, b)`` / ``concat(values)``.
        Records the binarisers' input tensors in :attr:`presigns`; returns the module's output tensor."""
        nodes = module.dataflow()
        env = run(module, nodes, x, call=lambda path, child, v: self.convert(child, v, path), add=add, concat=concat)
        for _, name in module.presign_points():
            self.presigns[f"{self.path}:{name}"] = env[name]
        return env[nodes[-1].out]
