"""The one environment bootstrap: TensorFlow settings every entry point needs, applied before TF is imported.

Larq and the LCE converter need legacy Keras 2 (``tf_keras``): TensorFlow reads ``TF_USE_LEGACY_KERAS`` when it
is first imported, so the variable must be set before any ``import tensorflow`` in the process. A user who
runs ``python -m export.verify`` (or any other command) from a clean shell must not need to know that.

:func:`configure` runs when the ``common`` package is imported (``common/__init__.py``). Every burn-edge module
imports from ``common`` before it can import TensorFlow, so every entry point (``python -m export.*``,
``runtimes.*``, ``train.*``, ``pipeline``) and every library user gets it without a call. It sets:

* ``TF_USE_LEGACY_KERAS=1`` -- always (a value of ``0`` would make every LCE command fail on import);
  nothing is changed when TensorFlow is already imported (too late to matter; :func:`legacy_keras_ok` says so).
* ``TF_CPP_MIN_LOG_LEVEL=3`` -- unless the user set it: TensorFlow's native start-up lines (CUDA/TensorRT
  probes, oneDNN notices) would otherwise print before a command's one ``error:`` line.

:func:`quiet_tensorflow` additionally lowers TensorFlow's and absl's Python loggers to ERROR once TF is imported.
:func:`native_stderr_silenced` drops what native code (the TFLite converter's absl logging, which no environment
variable reaches) writes to file descriptor 2 during a block; :func:`native_stderr_filtered` drops only the
known start-up notices (TFLite's ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``) and passes every
other line through. Importing this module imports only the standard
library.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

LEGACY_KERAS = "TF_USE_LEGACY_KERAS"
LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"


def configure() -> None:
    """Set the TensorFlow environment variables (see module doc). Idempotent; cheap (no imports)."""
    if "tensorflow" not in sys.modules:
        os.environ[LEGACY_KERAS] = "1"
    os.environ.setdefault(LOG_LEVEL, "3")


def legacy_keras_ok() -> bool:
    """True when TensorFlow is not imported yet or was imported with legacy Keras enabled."""
    return "tensorflow" not in sys.modules or os.environ.get(LEGACY_KERAS) == "1"


def quiet_tensorflow() -> None:
    """Import TensorFlow (after :func:`configure`) and lower its Python-side loggers to ERROR."""
    configure()
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with tensorflow
        pass


@contextlib.contextmanager
def _fd2_captured(on_restore: Callable[[bytes], None] | None = None) -> Iterator[None]:
    """Redirect file descriptor 2 to a temp file for the block, restore it afterwards, then hand what was
    captured to ``on_restore`` (if given). Python's ``sys.stderr`` is flushed first. No-op where fd 2 cannot be
    dup'ed."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                if on_restore is not None:
                    sink.seek(0)
                    on_restore(sink.read())
    finally:
        os.close(saved)


def native_stderr_silenced():
    """Context manager: drop what native code writes to file descriptor 2 during the block (native libraries'
    log lines -- e.g. the TFLite converter's ``W0000 ... Ignored output_format`` -- would otherwise print around
    a command's one ``error:`` line). No-op where fd 2 cannot be dup'ed."""
    return _fd2_captured()


# Native notices that say nothing to a user (printed once per interpreter by TFLite's minimal logger, which no
# environment variable or Python API of TF 2.16 / LCE 0.16 turns off).
NATIVE_NOTICES = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


def native_stderr_filtered(drop: tuple[str, ...] = NATIVE_NOTICES):
    """Context manager: capture file descriptor 2 during the block, then write back every captured line except
    those equal to one of ``drop`` (e.g. TFLite's per-interpreter XNNPACK notice in bench/verify logs). Unlike
    :func:`native_stderr_silenced` nothing else is lost: warnings and errors still reach stderr, after the
    block. No-op where fd 2 cannot be dup'ed."""
    def write_back(captured: bytes) -> None:
        kept = [ln for ln in captured.splitlines(keepends=True)
                if ln.rstrip(b"\r\n").decode(errors="replace") not in drop]
        if kept:
            os.write(2, b"".join(kept))

    return _fd2_captured(write_back)
