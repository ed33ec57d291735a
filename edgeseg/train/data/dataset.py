"""SegmentationDataset: verified YOLO polygon labels -> augmented, formatted training samples.

``__getitem__`` returns ``img`` (uint8 [3, H, W] RGB), ``cls`` ([n, 1] float32), ``bboxes`` ([n, 4]
float32 normalised xywh), ``masks`` (overlap index map [H/r, W/r] uint8, or per-instance [n, H/r, W/r]
when ``overlap_mask=False``), ``batch_idx`` ([n] zeros, filled by :func:`collate_fn`), ``im_file``,
``ori_shape``, ``resized_shape`` and ``ratio_pad`` (``((h/h0, w/w0), (left, top))`` on the letterbox
path, None after a random affine).

Images are first loaded with the long side resized to ``imgsz`` (ceil, INTER_LINEAR, kept as is if
already that size). Training (``augment=True``) uses mosaic then the random affine, HSV and flips;
:meth:`close_mosaic` switches mosaic off (also in persistent worker processes). Evaluation letterboxes
to ``imgsz`` without upscaling, or, with ``rect=True``, to each batch's own stride-aligned shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ...data.augment import DEFAULT_HYP, LetterBox, mosaic4, train_transforms
from ...data.dataset_yaml import DatasetConfig, list_image_files
from ...data.errors import DatasetError
from ...data.images import load_resized, rect_batches
from ...data.instances import Instances, resample_polygons
from ...data.labels import ImageLabels, LabelSummary, load_labels
from ...data.masks import polygons_to_masks, polygons_to_overlap_mask


class SegmentationDataset(Dataset):
    def __init__(
        self,
        images: str | Path | Sequence,
        nc: int,
        imgsz: int = 640,
        augment: bool = False,
        hyp: dict | None = None,
        rect: bool = False,
        batch_size: int = 16,
        stride: int = 32,
        pad: float | None = None,
        mask_ratio: int = 4,
        overlap_mask: bool = True,
        cache: bool = True,
        seed: int = 0,
        labels: list[ImageLabels] | None = None,
        prefix: str = "labels",
    ):
        """``images``: a folder, a .txt list, an image, or a list of those. ``pad`` defaults to 0.0 when
        augmenting (train) and 0.5 otherwise (val), as in Ultralytics' rect batch shapes."""
        self.imgsz, self.augment, self.stride = int(imgsz), bool(augment), int(stride)
        self.mask_ratio, self.overlap_mask, self.nc = int(mask_ratio), bool(overlap_mask), int(nc)
        self.hyp = dict(DEFAULT_HYP, **(hyp or {}))
        self.rect = bool(rect)
        self.batch_size = max(1, int(batch_size))
        self.pad = (0.0 if self.augment else 0.5) if pad is None else float(pad)
        self.summary: LabelSummary | None = None
        if labels is None:
            sources = [images] if isinstance(images, (str, Path)) else list(images)
            files = list_image_files(sources)
            if not files:
                raise DatasetError(f"no images found in {', '.join(str(s) for s in sources)}")
            labels, self.summary = load_labels(files, self.nc, cache=cache, prefix=prefix)
        self.labels: list[ImageLabels] = list(labels)
        self.rng = np.random.default_rng(seed)
        # shared with worker processes (fork or spawn) so close_mosaic() reaches persistent workers
        self._mosaic_on = torch.ones(1, dtype=torch.uint8).share_memory_()
        if self.hyp.get("mosaic", 1.0) <= 0 or self.rect:
            self._mosaic_on.zero_()
        self.batch_shapes: np.ndarray | None = None  # [nb, 2] (h, w) per rect batch, set exactly when rect
        self.batch_index: np.ndarray | None = None
        if self.rect:
            self._set_rectangle()
        self.transforms = train_transforms(self.imgsz, self.hyp) if self.augment else None
        self.letterbox = LetterBox((self.imgsz, self.imgsz), scaleup=False)

    @classmethod
    def from_config(cls, cfg: DatasetConfig, split: str = "train", **kwargs) -> SegmentationDataset:
        kwargs.setdefault("augment", split == "train")
        return cls(cfg.split(split), nc=cfg.nc, prefix=split, **kwargs)

    # -- setup -------------------------------------------------------------------------------------
    def _set_rectangle(self) -> None:
        order, self.batch_shapes, self.batch_index = rect_batches(
            [lb.shape for lb in self.labels], self.batch_size, self.imgsz, self.stride, self.pad
        )
        self.labels = [self.labels[i] for i in order]

    @property
    def im_files(self) -> list[str]:
        return [lb.im_file for lb in self.labels]

    @property
    def mosaic(self) -> bool:
        return bool(self.augment and self._mosaic_on.item())

    def close_mosaic(self) -> None:
        """Stop using mosaic (the last epochs of training); affects worker processes too."""
        self._mosaic_on.zero_()

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __len__(self) -> int:
        return len(self.labels)

    # -- loading -----------------------------------------------------------------------------------
    def load_image(self, i: int):
        """BGR image with the long side resized to imgsz; returns (img, (h0, w0), (h, w))."""
        im, (h0, w0) = load_resized(self.labels[i].im_file, self.imgsz)
        return im, (h0, w0), im.shape[:2]

    def get_image_and_label(self, i: int) -> dict:
        lb = self.labels[i]
        img, (h0, w0), (h, w) = self.load_image(i)
        segs = resample_polygons(lb.segments)
        inst = Instances(
            lb.boxes * np.array([w, h, w, h], np.float32), segs * np.array([w, h], np.float32), lb.cls.copy()
        )
        sample = {
            "img": img,
            "instances": inst,
            "im_file": lb.im_file,
            "ori_shape": (h0, w0),
            "resized_shape": (h, w),
            "ratio_pad": (h / h0, w / w0),
        }
        if self.batch_shapes is not None and self.batch_index is not None:
            sample["rect_shape"] = tuple(int(v) for v in self.batch_shapes[self.batch_index[i]])
        return sample

    def __getitem__(self, i: int) -> dict:
        rng = self.rng
        if self.augment:
            if self.mosaic and rng.random() < self.hyp["mosaic"]:
                idx = [i] + [int(j) for j in rng.integers(0, len(self), 3)]
                sample = mosaic4([self.get_image_and_label(j) for j in idx], self.imgsz, rng)
            else:
                sample = self.get_image_and_label(i)
            if self.transforms is None:  # built in __init__ when augment is on
                raise RuntimeError("augment was switched on after the dataset was built")
            sample = self.transforms(sample, rng)
            sample["ratio_pad"] = None
        else:
            sample = self.letterbox(self.get_image_and_label(i))
        return self.format(sample)

    # -- output ------------------------------------------------------------------------------------
    def format(self, sample: dict) -> dict:
        img = sample["img"]
        h, w = img.shape[:2]
        inst: Instances = sample["instances"]
        if self.overlap_mask:
            masks, order = polygons_to_overlap_mask((h, w), inst.segments, self.mask_ratio)
            inst = inst[order]
        else:
            masks = polygons_to_masks((h, w), inst.segments, self.mask_ratio)
        b = inst.boxes.astype(np.float32)
        xywh = (
            np.stack(
                [
                    (b[:, 0] + b[:, 2]) / 2 / w,
                    (b[:, 1] + b[:, 3]) / 2 / h,
                    (b[:, 2] - b[:, 0]) / w,
                    (b[:, 3] - b[:, 1]) / h,
                ],
                1,
            )
            if len(b)
            else np.zeros((0, 4))
        )
        n = len(inst)
        return {
            "img": torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))),
            "cls": torch.from_numpy(inst.cls.astype(np.float32).reshape(n, 1)),
            "bboxes": torch.from_numpy(xywh.astype(np.float32).reshape(n, 4)),
            "masks": torch.from_numpy(masks),
            "batch_idx": torch.zeros(n),
            "im_file": sample["im_file"],
            "ori_shape": tuple(int(v) for v in sample["ori_shape"]),
            "resized_shape": tuple(int(v) for v in sample["resized_shape"]),
            "ratio_pad": sample.get("ratio_pad"),
        }


def collate_fn(batch: list[dict]) -> dict:
    """Stack images, concatenate instances, and set ``batch_idx`` to each instance's image index."""
    out: dict[str, torch.Tensor | list] = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        if k == "img":
            out[k] = torch.stack(vals, 0)
        elif k == "masks":
            dtype = torch.int32 if any(v.dtype == torch.int32 for v in vals) else vals[0].dtype
            vals = [v.to(dtype) for v in vals]
            out[k] = torch.stack(vals, 0) if vals[0].ndim == 2 else torch.cat(vals, 0)
        elif k in ("cls", "bboxes"):
            out[k] = torch.cat(vals, 0)
        elif k == "batch_idx":
            out[k] = torch.cat([v + i for i, v in enumerate(vals)], 0)
        else:
            out[k] = vals
    return out
