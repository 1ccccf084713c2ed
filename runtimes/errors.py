"""Runtime errors. Each is a :class:`common.errors.BurnEdgeError`, so CLIs print it as one ``error: ...`` line.

A missing/corrupt model file raises :class:`common.errors.ModelFileError` (shared with export).
"""

from __future__ import annotations

from common.errors import BurnEdgeError


class RuntimeBackendError(BurnEdgeError):
    """A runtime cannot be used: unknown backend name, missing optional package, bad kernel/thread option."""


class RemoteError(BurnEdgeError):
    """A remote device (ssh host or adb device) is unreachable, or a remote command failed."""


class BenchmarkOutputError(BurnEdgeError):
    """The text printed by ``lce_benchmark_model`` / ``benchmark_model`` holds no ``Inference timings`` line."""
