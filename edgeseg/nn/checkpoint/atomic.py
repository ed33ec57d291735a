"""Atomic writes for checkpoints: see :mod:`edgeseg.fileio` (kept here for existing imports)."""

from __future__ import annotations

from ...fileio import atomic_write, atomic_write_with

__all__ = ["atomic_write", "atomic_write_with"]
