"""Exceptions raised by edgeseg.

Everything edgeseg raises on purpose derives from :class:`EdgesegError`, so an application can catch
one type. Plain ``ValueError``/``TypeError`` are still used for bad arguments, and ``FileNotFoundError``
for paths that do not exist, as Python code expects.
"""

from __future__ import annotations


class EdgesegError(Exception):
    """Base class of edgeseg's own errors."""


class ModelLoadError(EdgesegError):
    """A model file cannot be loaded: truncated, not a model, or not a segmentation model."""


class BackendNotInstalledError(EdgesegError, ImportError):
    """The package a backend needs is not installed; the message names the pip extra."""

    def __init__(self, backend: str, package: str, extra: str, reason: object = None):
        message = (
            f"the '{backend}' backend needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'edgeseg[{extra}]'"
        )
        if reason:
            message += f" ({reason})"
        super().__init__(message)
        self.backend = backend
        self.package = package
        self.extra = extra


class ImageReadError(EdgesegError):
    """An image file or array cannot be read or understood as an image."""


class ModelOutputError(EdgesegError):
    """A model's outputs do not have the shapes of a YOLO segmentation model, or hold NaN/inf."""


class SourceError(EdgesegError):
    """A frame source (video, camera, stream) cannot be opened."""
