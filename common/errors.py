"""Errors a command-line user can act on; ``main()`` functions print them as one ``error: ...`` line (exit 2).

Every package raises these (or a domain subclass in ``export.errors`` / ``runtimes.errors``), so a CLI
catches one base class, :class:`BurnEdgeError`, whichever layer the problem came from.
"""


class BurnEdgeError(RuntimeError):
    """Base class for user-facing errors (bad input files, bad options, missing data).

    ``str(e)`` is always one line (runs of whitespace, newlines included, become one space): CLIs print it as
    their single ``error: ...`` line, and a message quoting a multi-line library error or a tensor repr must
    not break that contract.
    """

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class ConfigError(BurnEdgeError, ValueError):
    """An option or config value is invalid (the message names the allowed values)."""


class CheckpointError(BurnEdgeError):
    """A checkpoint is missing, corrupt, not a burn-edge/official checkpoint, or the wrong architecture."""


class DatasetError(BurnEdgeError):
    """A data set root is missing, empty or not in the expected format."""


class ModelFileError(BurnEdgeError):
    """A model file is missing, has an unknown suffix, or the backend cannot load it (corrupt/truncated)."""


class NonFiniteError(BurnEdgeError):
    """A loss or weights became NaN/Inf: training stops without writing them (the last good checkpoint stays)."""


class OutputError(BurnEdgeError):
    """An output file cannot be written (full disk, read-only file system, permissions): nothing partial is
    left behind (see :mod:`common.files`)."""
