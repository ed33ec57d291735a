"""Datasets on disk, without torch: dataset yamls, YOLO polygon labels (verified, cached), images, instances,
polygon masks and the numpy augmentations. Training (:mod:`edgeseg.train`), validation (:mod:`edgeseg.val`)
and the exporters' calibration all read data through this package; it imports none of them.

Modules (import them directly; nothing here runs at import time):

- :mod:`.dataset_yaml` -- read a dataset yaml into a :class:`~.dataset_yaml.DatasetConfig`
- :mod:`.labels` -- find, parse and verify label files (with a per-dataset cache, :mod:`.label_cache`;
  the records both use are in :mod:`.label_records`)
- :mod:`.images` -- image loading and rect-batch geometry
- :mod:`.instances` -- the container of boxes + polygons + classes the transforms act on
- :mod:`.augment` -- mosaic, random affine, HSV, flip, letterbox
- :mod:`.masks` -- polygons to (overlap) masks
- :mod:`.errors` -- :class:`DatasetError`, :class:`DatasetNotFoundError`
"""

from __future__ import annotations

from .errors import DatasetError, DatasetNotFoundError

__all__ = ["DatasetError", "DatasetNotFoundError"]
