"""Runtime errors. Each is a :class:`train.errors.BurnEdgeError`, so CLIs print it as one ``error: ...`` line."""

from __future__ import annotations

from train.errors import BurnEdgeError


class RuntimeBackendError(BurnEdgeError):
    """A runtime cannot be used: unknown backend name, missing optional package, bad kernel/thread option."""


class ModelFileError(BurnEdgeError):
    """A model file is missing, has an unknown suffix, or the backend cannot load it (corrupt/truncated)."""


class RemoteError(BurnEdgeError):
    """A remote device (ssh host or adb device) is unreachable, or a remote command failed."""


class BenchmarkOutputError(BurnEdgeError):
    """The text printed by ``lce_benchmark_model`` / ``benchmark_model`` holds no ``Inference timings`` line."""
