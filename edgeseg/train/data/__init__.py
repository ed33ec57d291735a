"""Dataset, label checking, augmentation and data loading for edgeseg training (YOLO polygon datasets).

Modules (import them directly; nothing here runs at import time):

- :mod:`.dataset_yaml` -- read a dataset yaml into a :class:`~.dataset_yaml.DatasetConfig`
- :mod:`.labels` -- find, parse and verify label files (with a per-dataset cache, :mod:`.label_cache`)
- :mod:`.instances` -- the container of boxes + polygons + classes the transforms act on
- :mod:`.augment` -- mosaic, random affine, HSV, flip, letterbox
- :mod:`.masks` -- polygons to (overlap) masks
- :mod:`.dataset` -- :class:`~.dataset.SegmentationDataset` and its ``collate_fn``
- :mod:`.loader` -- :func:`~.loader.build_dataloader`
"""
from __future__ import annotations

from .errors import DatasetError, DatasetNotFoundError

__all__ = ["DatasetError", "DatasetNotFoundError"]
