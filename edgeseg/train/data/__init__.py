"""The torch side of training data: :class:`~.dataset.SegmentationDataset` (with its ``collate_fn``) and
:func:`~.loader.build_dataloader`. Everything torch-free (dataset yamls, labels, augmentation, masks) is in
:mod:`edgeseg.data`.
"""

from __future__ import annotations

from ...data.errors import DatasetError, DatasetNotFoundError

__all__ = ["DatasetError", "DatasetNotFoundError"]
