"""The records a label scan produces (shared by :mod:`.labels` and :mod:`.label_cache`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LOGGER", "ImageLabels", "LabelSummary", "img2label_path"]

LOGGER = logging.getLogger("edgeseg.data")


@dataclass
class ImageLabels:
    """The verified labels of one image. ``segments`` are normalised polygons, one [k, 2] float32 each."""

    im_file: str
    shape: tuple[int, int]  # original (h, w)
    cls: np.ndarray  # [n] int64
    segments: list[np.ndarray]

    @property
    def boxes(self) -> np.ndarray:
        """Normalised xyxy boxes [n, 4] float32, the extent of each polygon."""
        if not self.segments:
            return np.zeros((0, 4), np.float32)
        return np.array(
            [[s[:, 0].min(), s[:, 1].min(), s[:, 0].max(), s[:, 1].max()] for s in self.segments], np.float32
        )


@dataclass
class LabelSummary:
    """What a label scan found. ``messages`` hold every warning (file:line ...)."""

    images: int = 0  # images kept
    corrupt_images: int = 0  # images dropped (unreadable, too small, unreadable label file)
    missing_labels: int = 0  # images without a label file (kept, no instances)
    empty_labels: int = 0  # label files without any valid row (kept, no instances)
    instances: int = 0
    broken_rows: int = 0
    duplicate_rows: int = 0
    messages: list[str] = field(default_factory=list)
    from_cache: bool = False
    cache_file: Path | None = None

    COUNTS = (
        "images",
        "corrupt_images",
        "missing_labels",
        "empty_labels",
        "instances",
        "broken_rows",
        "duplicate_rows",
    )

    def counts(self) -> dict:
        return {k: int(getattr(self, k)) for k in self.COUNTS}

    def __str__(self) -> str:
        return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts().items())


def img2label_path(im_file) -> Path:
    """``.../images/.../x.jpg`` -> ``.../labels/.../x.txt`` (last ``images`` folder of the path)."""
    s = str(im_file)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa in s:
        head, _, tail = s.rpartition(sa)
        s = head + sb + tail
    return Path(s).with_suffix(".txt")
