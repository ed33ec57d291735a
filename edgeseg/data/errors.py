"""Errors raised while reading a training dataset."""

from __future__ import annotations

from ..errors import EdgesegError


class DatasetError(EdgesegError, ValueError):
    """A dataset yaml or label file is wrong in a way training cannot work around (message names file:line)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A path named by a dataset yaml does not exist."""
