"""Errors a command-line user can act on. ``main()`` functions print them as one ``error: ...`` line."""


class BurnEdgeError(RuntimeError):
    """Base class for user-facing errors (bad input files, bad options, missing data)."""


class CheckpointError(BurnEdgeError):
    """A checkpoint is missing, corrupt, not a burn-edge/official checkpoint, or the wrong architecture."""


class DatasetError(BurnEdgeError):
    """A data set root is missing, empty or not in the expected format."""


class ConfigError(BurnEdgeError, ValueError):
    """An option or config value is invalid (the message names the allowed values)."""
