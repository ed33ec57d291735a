"""Validation images and labels without torch, prepared exactly as Ultralytics' val dataloader does.

Each image is read (BGR), its long side resized to ``imgsz`` (ceil, INTER_LINEAR), then letterboxed
without upscaling (pad 114) to either

* ``rect=True`` (models with a dynamic input, e.g. torch checkpoints): its batch's own shape -- images
  sorted by aspect ratio (h / w), cut into batches of ``batch_size``, each batch padded to
  ``ceil(shape * imgsz / stride + 0.5) * stride``; or
* ``rect=False`` (exported models with a fixed input): the square ``imgsz`` (or the model's (h, w)).

Ground truth comes with the image: classes, xyxy boxes in letterboxed input pixels (the extent of each
polygon) and the overlap index map at 1/4 resolution (instances sorted by mask area, largest first).

Reuses :mod:`edgeseg.data` (label scanning/caching, polygons, letterbox,
masks); ``edgeseg.train.data.dataset`` imports torch at module level, so it is not used here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ..data.augment import LetterBox
from ..data.dataset_yaml import DatasetConfig, list_image_files, load_dataset_yaml
from ..data.errors import DatasetError
from ..data.images import load_resized, rect_batches
from ..data.instances import Instances, resample_polygons
from ..data.labels import ImageLabels, LabelSummary, load_labels
from ..data.masks import polygons_to_overlap_mask

__all__ = ["ValDataset", "ValImage", "load_split", "select_images"]

MASK_RATIO = 4
RECT_PAD = 0.5


@dataclass
class ValImage:
    """One letterboxed validation image and its ground truth (in letterboxed input pixels)."""

    im_file: str
    img: np.ndarray  # uint8 [H, W, 3] BGR, letterboxed
    ori_shape: tuple[int, int]  # (h0, w0) of the file
    gain: tuple[float, float]  # (gain_x, gain_y): input pixels per original pixel
    pad: tuple[int, int]  # (left, top) letterbox padding in input pixels
    cls: np.ndarray  # int64 [n]
    boxes: np.ndarray  # float32 [n, 4] xyxy, input pixels
    overlap: np.ndarray  # overlap index map [H // 4, W // 4]; value k = instance k - 1

    @property
    def shape(self) -> tuple[int, int]:
        return self.img.shape[0], self.img.shape[1]

    def __len__(self) -> int:
        return int(self.cls.shape[0])


Indices = Union[None, slice, range, Sequence[int]]


def select_images(files: Sequence[Path], indices: Indices = None) -> list[Path]:
    """The images of a split (sorted by path) at ``indices``: None (all), a slice/range (e.g.
    ``slice(64, 128)``: coco128's images 64-127) or a sequence of ints. Out-of-range or repeated
    indices, or a selection that is empty, are a clear ``ValueError``."""
    files = list(files)
    if indices is None:
        return files
    n = len(files)
    if isinstance(indices, slice):
        picked = list(range(n))[indices]
    else:
        if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
            raise ValueError(f"indices must be a slice, a range or a sequence of ints, got {indices!r}")
        picked = []
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise ValueError(f"image indices must be integers, got {i!r}")
            if not -n <= int(i) < n:
                raise ValueError(f"image index {int(i)} out of range: the split has {n} images")
            picked.append(int(i) % n)
        if len(set(picked)) != len(picked):
            raise ValueError("image indices must not repeat")
    if not picked:
        raise ValueError(f"indices {indices!r} select no images (the split has {n})")
    return [files[i] for i in picked]


def load_split(data: str | Path | DatasetConfig, split: str = "val") -> tuple[DatasetConfig, list[Path]]:
    """The dataset config and the image sources of ``split``; a clear DatasetError if the split is absent."""
    cfg = data if isinstance(data, DatasetConfig) else load_dataset_yaml(data)
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; expected train, val or test")
    sources = cfg.split(split)
    if not sources:
        where = cfg.yaml_file or "dataset"
        raise DatasetError(f"{where}: the dataset defines no '{split}' split (key '{split}' is missing or empty)")
    return cfg, sources


class ValDataset:
    """Validation samples (numpy), in Ultralytics' order and with its rect batch shapes.

    ``input_shape`` (h, w) letterboxes every image to that fixed shape (exported models); otherwise
    ``imgsz`` square, or with ``rect`` each batch's own shape. ``indices`` keeps a subset of the
    split's images (sorted by path), see :func:`select_images`.
    """

    def __init__(
        self,
        images: str | Path | Sequence,
        nc: int,
        imgsz: int = 640,
        batch_size: int = 1,
        rect: bool = False,
        stride: int = 32,
        input_shape: tuple[int, int] | None = None,
        cache: bool = True,
        prefix: str = "val",
        labels: list[ImageLabels] | None = None,
        indices: Indices = None,
    ):
        self.imgsz, self.stride, self.nc = int(imgsz), int(stride), int(nc)
        self.batch_size = max(1, int(batch_size))
        self.rect = bool(rect)
        if self.rect and input_shape is not None:
            raise ValueError("rect batches need a model with a dynamic input; got a fixed input_shape")
        self.input_shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
        self.summary: LabelSummary | None = None
        if labels is None:
            sources = [images] if isinstance(images, (str, Path)) else list(images)
            files = list_image_files(sources)
            if not files:
                raise DatasetError(f"no images found in {', '.join(str(s) for s in sources)}")
            files = select_images(files, indices)
            labels, self.summary = load_labels(files, self.nc, cache=cache, prefix=prefix)
        self.labels: list[ImageLabels] = list(labels)
        self.batch_shapes: np.ndarray | None = None  # [nb, 2] (h, w) per rect batch, set exactly when rect
        self.batch_index: np.ndarray | None = None
        if self.rect:
            self._set_rectangle()
        target = self.input_shape or (self.imgsz, self.imgsz)
        self.letterbox = LetterBox(target, scaleup=False)

    @classmethod
    def from_config(cls, cfg: DatasetConfig, split: str = "val", **kwargs) -> ValDataset:
        cfg, sources = load_split(cfg, split)
        return cls(sources, nc=cfg.nc, prefix=split, **kwargs)

    def _set_rectangle(self) -> None:
        """Sort by aspect ratio and give each batch its stride-aligned shape (Ultralytics' rect val)."""
        order, self.batch_shapes, self.batch_index = rect_batches(
            [lb.shape for lb in self.labels], self.batch_size, self.imgsz, self.stride, RECT_PAD
        )
        self.labels = [self.labels[i] for i in order]

    @property
    def im_files(self) -> list[str]:
        return [lb.im_file for lb in self.labels]

    def __len__(self) -> int:
        return len(self.labels)

    def _load(self, i: int):
        size = max(self.input_shape) if self.input_shape else self.imgsz
        return load_resized(self.labels[i].im_file, size)

    def __getitem__(self, i: int) -> ValImage:
        if not 0 <= i < len(self):
            raise IndexError(i)
        lb = self.labels[i]
        img, (h0, w0) = self._load(i)
        h, w = img.shape[:2]
        inst = Instances(
            lb.boxes * np.array([w, h, w, h], np.float32),
            resample_polygons(lb.segments) * np.array([w, h], np.float32),
            lb.cls.copy(),
        )
        sample = {"img": img, "instances": inst, "im_file": lb.im_file}
        if self.batch_shapes is not None and self.batch_index is not None:
            sample["rect_shape"] = tuple(int(v) for v in self.batch_shapes[self.batch_index[i]])
        rect_shape = sample.get("rect_shape")
        _, r, (left, top, _, _) = self.letterbox.geometry((h, w), rect_shape)
        sample = self.letterbox(sample)
        out = sample["img"]
        inst = sample["instances"]
        overlap, order = polygons_to_overlap_mask(out.shape[:2], inst.segments, MASK_RATIO)
        inst = inst[order]
        gain = (w * r / w0, h * r / h0)
        return ValImage(
            im_file=lb.im_file,
            img=out,
            ori_shape=(h0, w0),
            gain=gain,
            pad=(left, top),
            cls=inst.cls.astype(np.int64),
            boxes=inst.boxes.astype(np.float32).reshape(-1, 4),
            overlap=overlap,
        )

    def batches(self) -> Iterator[list[ValImage]]:
        """Consecutive batches of ``batch_size`` images (in rect mode each shares one input shape)."""
        for start in range(0, len(self), self.batch_size):
            yield [self[i] for i in range(start, min(start + self.batch_size, len(self)))]
