"""Per-module-type converter registries that walk the training module tree.

Both exporters (``export.onnx_graph`` and ``export.lce``) own one :class:`ConverterRegistry`. A
converter is registered per ``nn.Module`` type::

    REGISTRY = ConverterRegistry("ONNX")

    @REGISTRY.converter(BinaryConv2d)
    def _bconv(m: BinaryConv2d, x, ctx):   # x: the target framework's tensor (ONNX value name / Keras tensor)
        ...
        return y

``ctx.convert(child, x, name)`` recurses into a child module (by attribute name, so errors carry the
dotted module path, e.g. ``blocks.7.conv3x3``). There is no second layer plan: composite modules
(``ReActNetA``, ``Block``, ``Stem``, ``nn.Sequential``) have converters that call ``ctx.convert`` on
their children in forward order. A type with no converter raises :class:`UnsupportedModuleError`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from export.errors import UnsupportedModuleError

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
    """State of one walk: the current module path plus exporter-specific state (subclass it)."""

    def __init__(self, registry: ConverterRegistry):
        self.registry = registry
        self.path = ""

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
