"""Loads the compiled core with a clear message when it is missing."""

from __future__ import annotations

__all__ = ["core"]

try:
    from edgeseg import _core as core
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "edgeseg's native core (edgeseg._core) is not built or cannot be loaded: "
        f"{exc}. Reinstall with `pip install .` (needs a C++17 compiler and CMake)."
    ) from exc
