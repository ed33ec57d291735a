"""Row selection shared by the row containers (:class:`edgeseg.detections.Detections`,
:class:`edgeseg.ops.masks.MaskSet`, :class:`edgeseg.ops.decode.Candidates`): one reading of an int, a slice,
a boolean mask or integer indices, and one error for a selection that does not fit.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

__all__ = ["SelectionError", "SelectionTypeError", "row_index", "row_indices"]


class SelectionError(IndexError, ValueError):
    """A selection that does not fit the rows: an index out of range, a boolean mask of the wrong length, or
    indices that are not 1-D integers.

    Both an :class:`IndexError` (what sequences and numpy raise) and a :class:`ValueError` (a bad argument),
    so code that catches either keeps working.
    """


class SelectionTypeError(SelectionError, TypeError):
    """A lone bool used as a selection (``rows[True]``): also a :class:`TypeError`, the wrong kind of key."""


def row_index(i: Any, n: int, what: str = "rows") -> int:
    """One row's index in ``[0, n)`` from an int (negative counts from the end)."""
    index = operator.index(i)
    if not -n <= index < n:
        raise SelectionError(f"index {index} out of range for {n} {what}")
    return index % n


def row_indices(key: Any, n: int, what: str = "rows") -> np.ndarray:
    """int64 indices in ``[0, n)`` of the rows ``key`` selects, in order.

    ``key``: ``None`` (all rows), an int, a slice, a boolean mask of length ``n``, or integer indices
    (negative ones count from the end). Anything else raises :class:`SelectionError`.
    """
    if key is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(key, np.ndarray) and key.dtype == np.int64 and key.ndim == 1 and key.size:
        # the common case (indices from flatnonzero/argsort), checked with two reductions
        low, high = int(key.min()), int(key.max())
        if low < -n or high >= n:
            raise SelectionError(f"index {low if low < -n else high} out of range for {n} {what}")
        return key if low >= 0 else key % n
    if isinstance(key, (bool, np.bool_)):
        raise SelectionTypeError(f"a single bool is not a valid selection; use a boolean mask of length {n}")
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key]
    a = np.asarray(key)
    if a.dtype == bool:
        if a.shape != (n,):
            raise SelectionError(f"boolean selection must have shape ({n},), got {a.shape}")
        return np.flatnonzero(a).astype(np.int64)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise SelectionError(
            f"a selection must be an int, a slice, a boolean mask or 1-D integer indices, got {a.dtype} {a.shape}"
        )
    a = a.astype(np.int64)
    bad = a[(a < -n) | (a >= n)]
    if bad.size:
        raise SelectionError(f"index {int(bad[0])} out of range for {n} {what}")
    return a % max(n, 1)
