"""Export errors. Each is a :class:`common.errors.BurnEdgeError`, so CLIs print it as one ``error:`` line."""

from __future__ import annotations

from common.errors import BurnEdgeError


class ExportError(BurnEdgeError):
    """An export cannot proceed (bad option combination, unsupported checkpoint for this target, ...)."""


class UnsupportedModuleError(ExportError):
    """The module tree holds a type with no converter (export never silently falls back to float)."""

    def __init__(self, path: str, type_: type, registered: list[str], target: str):
        self.path, self.type = path, type_
        super().__init__(f"{target} export has no converter for module {path or '<root>'!r} of type "
                         f"{type_.__module__}.{type_.__qualname__}; registered types: {', '.join(registered)}")


class FloatFallbackError(ExportError):
    """The converter audit found a binary conv that did not become ``LceBconv2d``."""


class EquivalenceError(ExportError):
    """An exported model disagrees with PyTorch beyond the stated tolerance."""


class AndroidAssetsError(ExportError):
    """The assets cannot be written: a missing/corrupt model, labels that do not fit the model, bad mean/std."""
