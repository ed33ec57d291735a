"""The version of edgeseg (one place; the package, checkpoints, exports and reports read it)."""

__version__ = "0.1.0"
