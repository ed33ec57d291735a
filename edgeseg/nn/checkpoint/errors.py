"""Exceptions raised while reading or writing checkpoints.

All derive from :class:`CheckpointError`, itself an :class:`edgeseg.errors.ModelLoadError`, so callers
can catch a single type for "this file cannot be used as a model".
"""

from __future__ import annotations

from ...errors import ModelLoadError


class CheckpointError(ModelLoadError):
    """A checkpoint cannot be read or used."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist or is not a regular file."""


class CheckpointFormatError(CheckpointError, ValueError):
    """The file is not a checkpoint edgeseg understands: not a torch zip, truncated, corrupt, or of
    an unexpected structure."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint references a Python global that is not on edgeseg's allow-list.

    Raised before that global is imported or called, so nothing in the file has run.
    """

    def __init__(self, path: object, global_name: str, reason: str = ""):
        message = (
            f"refusing to load {path}: it references the global '{global_name}', which is not on "
            "edgeseg's allow-list of checkpoint types"
        )
        if reason:
            message += f" ({reason})"
        super().__init__(message)
        self.path = path
        self.global_name = global_name


class StateDictMismatchError(CheckpointError):
    """The checkpoint's weights do not fit the architecture edgeseg built for it."""

    def __init__(self, message: str, missing=(), unexpected=(), mismatched=()):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)
