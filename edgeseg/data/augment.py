"""Training augmentations and the letterbox, acting on a sample dict.

A sample is ``{"img": HxWx3 uint8 BGR, "instances": Instances (pixel coordinates of img), ...}``
plus metadata (``ori_shape``, ``resized_shape``, ``ratio_pad``, ``im_file``, optional ``rect_shape``).
Every random transform takes a ``numpy.random.Generator`` so a run is reproducible from its seed.

Defaults follow Ultralytics' segmentation training recipe: mosaic of 4 (p 1.0) on a 2*imgsz canvas,
random affine (translate 0.1, scale 0.5, border -imgsz/2 after mosaic), HSV (0.015, 0.7, 0.4),
left-right flip 0.5; validation uses only the letterbox (no upscaling, pad 114).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable

import numpy as np

from ..opencv import require_cv2
from .instances import Instances

PAD_VALUE = 114


class Compose:
    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


class LetterBox:
    """Resize keeping the aspect ratio and pad to ``new_shape`` (h, w) or to ``sample["rect_shape"]``.

    r = min(new_h / h, new_w / w) (capped at 1 without ``scaleup``); the resized size is round(w*r),
    round(h*r) (cv2 INTER_LINEAR); the padding is split top = round(dh - 0.1), bottom = round(dh + 0.1)
    (same for left/right) with value 114.
    """

    def __init__(
        self,
        new_shape=640,
        scaleup: bool = True,
        center: bool = True,
        auto: bool = False,
        stride: int = 32,
        pad_value: int = PAD_VALUE,
    ):
        self.new_shape = (new_shape, new_shape) if isinstance(new_shape, int) else tuple(new_shape)
        self.scaleup, self.center, self.auto, self.stride, self.pad_value = scaleup, center, auto, stride, pad_value

    def geometry(self, shape: tuple[int, int], new_shape=None):
        """``(new_unpad (w, h), ratio r, (left, top, right, bottom))`` for an image of ``shape`` (h, w)."""
        new_shape = self.new_shape if new_shape is None else tuple(int(v) for v in new_shape)
        r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
        if not self.scaleup:
            r = min(r, 1.0)
        new_unpad = (int(round(shape[1] * r)), int(round(shape[0] * r)))
        dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
        if self.auto:
            dw, dh = np.mod(dw, self.stride), np.mod(dh, self.stride)
        if self.center:
            dw, dh = dw / 2, dh / 2
            top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
            left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
        else:
            top, left, bottom, right = 0, 0, int(round(dh)), int(round(dw))
        return new_unpad, r, (left, top, right, bottom)

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        cv2 = require_cv2("reading a dataset")
        img = sample["img"]
        shape = img.shape[:2]
        new_unpad, r, (left, top, right, bottom) = self.geometry(shape, sample.pop("rect_shape", None))
        if (shape[1], shape[0]) != new_unpad:
            img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(self.pad_value,) * 3)
        inst: Instances = sample["instances"]
        if len(inst):
            inst.scale(r, r)
            inst.add_offset(left, top)
        if sample.get("ratio_pad") is not None:
            sample["ratio_pad"] = (sample["ratio_pad"], (left, top))
        sample["img"] = np.ascontiguousarray(img)
        sample["resized_shape"] = img.shape[:2]
        return sample


def mosaic4(samples: list[dict], imgsz: int, rng: np.random.Generator, pad_value: int = PAD_VALUE) -> dict:
    """Tile 4 samples around a random centre in [imgsz/2, 3*imgsz/2] on a 2*imgsz canvas (fill 114).

    Sample 0 goes top-left of the centre, then top-right, bottom-left, bottom-right. Polygons are
    shifted with their image, then clipped to the canvas; instances left without area are dropped.
    The result carries ``mosaic_border`` = (-imgsz//2, -imgsz//2) for :class:`RandomAffine`.
    """
    s = imgsz
    border = (-s // 2, -s // 2)
    yc, xc = (int(rng.uniform(-b, 2 * s + b)) for b in border)
    canvas = None
    parts = []
    for i, smp in enumerate(samples[:4]):
        img = smp["img"]
        h, w = img.shape[:2]
        if canvas is None:
            canvas = np.full((2 * s, 2 * s, img.shape[2]), pad_value, np.uint8)
        if i == 0:
            xa1, ya1, xa2, ya2 = max(xc - w, 0), max(yc - h, 0), xc, yc
            xb1, yb1, xb2, yb2 = w - (xa2 - xa1), h - (ya2 - ya1), w, h
        elif i == 1:
            xa1, ya1, xa2, ya2 = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
            xb1, yb1, xb2, yb2 = 0, h - (ya2 - ya1), min(w, xa2 - xa1), h
        elif i == 2:
            xa1, ya1, xa2, ya2 = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
            xb1, yb1, xb2, yb2 = w - (xa2 - xa1), 0, w, min(ya2 - ya1, h)
        else:
            xa1, ya1, xa2, ya2 = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
            xb1, yb1, xb2, yb2 = 0, 0, min(w, xa2 - xa1), min(ya2 - ya1, h)
        canvas[ya1:ya2, xa1:xa2] = img[yb1:yb2, xb1:xb2]
        inst = smp["instances"].copy()
        inst.add_offset(xa1 - xb1, ya1 - yb1)
        parts.append(inst)
    inst = Instances.concatenate(parts)
    inst.clip(2 * s, 2 * s)
    inst.remove_zero_area()
    out = {k: v for k, v in samples[0].items() if k not in ("img", "instances", "rect_shape")}
    out.update(img=canvas, instances=inst, resized_shape=(2 * s, 2 * s), mosaic_border=border)
    return out


def segment_box(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """xyxy extent of the part of a polygon inside the image (all clipped if 3 sides stick out)."""
    x, y = xy[:, 0], xy[:, 1]
    if (int(x.min() < 0) + int(y.min() < 0) + int(x.max() > width) + int(y.max() > height)) >= 3:
        x, y = x.clip(0, width), y.clip(0, height)
    inside = (x >= 0) & (y >= 0) & (x <= width) & (y <= height)
    x, y = x[inside], y[inside]
    if not np.any(x):
        return np.zeros(4, xy.dtype)
    return np.array([x.min(), y.min(), x.max(), y.max()], xy.dtype)


def box_candidates(
    box1: np.ndarray,
    box2: np.ndarray,
    wh_thr: float = 2,
    ar_thr: float = 100,
    area_thr: float = 0.1,
    eps: float = 1e-16,
) -> np.ndarray:
    """Keep boxes (xyxy, [n, 4]) still wider/taller than wh_thr px, with aspect < ar_thr and keeping
    more than area_thr of their (scaled) area before the transform."""
    w1, h1 = box1[:, 2] - box1[:, 0], box1[:, 3] - box1[:, 1]
    w2, h2 = box2[:, 2] - box2[:, 0], box2[:, 3] - box2[:, 1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


class RandomAffine:
    """Random rotation/scale/shear/translation/perspective about the image centre.

    Output size is the input size plus 2 * border (border from ``sample["mosaic_border"]``, else
    ``border``). Polygons are transformed, boxes recomputed from them, polygons clipped to their box,
    and instances filtered with :func:`box_candidates` (area_thr 0.01 for polygons, as Ultralytics).
    """

    def __init__(
        self,
        degrees=0.0,
        translate=0.1,
        scale=0.5,
        shear=0.0,
        perspective=0.0,
        border=(0, 0),
        area_thr: float = 0.01,
        pre_transform: Callable | None = None,
    ):
        self.degrees, self.translate, self.scale = degrees, translate, scale
        self.shear, self.perspective, self.border = shear, perspective, tuple(border)
        self.area_thr = area_thr
        self.pre_transform = pre_transform

    def matrix(self, img_shape, size, rng: np.random.Generator):
        cv2 = require_cv2("reading a dataset")
        C = np.eye(3)
        C[0, 2], C[1, 2] = -img_shape[1] / 2, -img_shape[0] / 2
        P = np.eye(3)
        P[2, 0] = rng.uniform(-self.perspective, self.perspective)
        P[2, 1] = rng.uniform(-self.perspective, self.perspective)
        R = np.eye(3)
        a = rng.uniform(-self.degrees, self.degrees)
        s = rng.uniform(1 - self.scale, 1 + self.scale)
        R[:2] = cv2.getRotationMatrix2D(angle=a, center=(0, 0), scale=s)
        S = np.eye(3)
        S[0, 1] = math.tan(rng.uniform(-self.shear, self.shear) * math.pi / 180)
        S[1, 0] = math.tan(rng.uniform(-self.shear, self.shear) * math.pi / 180)
        T = np.eye(3)
        T[0, 2] = rng.uniform(0.5 - self.translate, 0.5 + self.translate) * size[0]
        T[1, 2] = rng.uniform(0.5 - self.translate, 0.5 + self.translate) * size[1]
        return T @ S @ R @ P @ C, s

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        cv2 = require_cv2("reading a dataset")
        if self.pre_transform is not None and "mosaic_border" not in sample:
            sample = self.pre_transform(sample, rng)
        sample.pop("ratio_pad", None)
        border = sample.pop("mosaic_border", self.border)
        img = sample["img"]
        size = (img.shape[1] + 2 * border[1], img.shape[0] + 2 * border[0])  # (w, h)
        M, s = self.matrix(img.shape[:2], size, rng)
        if border[0] or border[1] or (np.eye(3) != M).any():
            if self.perspective:
                img = cv2.warpPerspective(img, M, dsize=size, borderValue=(PAD_VALUE,) * 3)
            else:
                img = cv2.warpAffine(img, M[:2], dsize=size, borderValue=(PAD_VALUE,) * 3)
        inst: Instances = sample["instances"]
        if len(inst):
            n, k = inst.segments.shape[:2]
            xy = np.concatenate([inst.segments.reshape(-1, 2).astype(np.float64), np.ones((n * k, 1))], 1) @ M.T
            xy = (xy[:, :2] / xy[:, 2:3]).reshape(n, k, 2).astype(np.float32)
            boxes = np.stack([segment_box(p, size[0], size[1]) for p in xy], 0)
            xy[..., 0] = xy[..., 0].clip(boxes[:, 0:1], boxes[:, 2:3])
            xy[..., 1] = xy[..., 1].clip(boxes[:, 1:2], boxes[:, 3:4])
            new = Instances(boxes, xy, inst.cls.copy())
            new.clip(*size)
            keep = box_candidates(inst.boxes * s, new.boxes, area_thr=self.area_thr)
            inst = new[keep]
        sample["img"] = np.ascontiguousarray(img)
        sample["instances"] = inst
        sample["resized_shape"] = img.shape[:2]
        return sample


class RandomHSV:
    """Random hue/saturation/value gains applied through lookup tables; geometry is untouched."""

    def __init__(self, hgain=0.015, sgain=0.7, vgain=0.4):
        self.gains = np.array([hgain, sgain, vgain], np.float64)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        cv2 = require_cv2("reading a dataset")
        img = sample["img"]
        if img.ndim != 3 or img.shape[2] != 3 or not self.gains.any():
            return sample
        r = rng.uniform(-1, 1, 3) * self.gains
        x = np.arange(256, dtype=np.float64)
        lut_h = ((x + r[0] * 180) % 180).astype(np.uint8)
        lut_s = np.clip(x * (r[1] + 1), 0, 255).astype(np.uint8)
        lut_v = np.clip(x * (r[2] + 1), 0, 255).astype(np.uint8)
        lut_s[0] = 0
        h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
        hsv = cv2.merge((cv2.LUT(h, lut_h), cv2.LUT(s, lut_s), cv2.LUT(v, lut_v)))
        sample["img"] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return sample


class RandomFlip:
    """Left-right (``horizontal``) or up-down (``vertical``) flip with probability p."""

    def __init__(self, p: float = 0.5, direction: str = "horizontal"):
        if direction not in ("horizontal", "vertical"):
            raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.p, self.direction = p, direction

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if not self.p or rng.random() >= self.p:
            return sample
        img = sample["img"]
        h, w = img.shape[:2]
        inst: Instances = sample["instances"]
        if self.direction == "horizontal":
            sample["img"] = np.ascontiguousarray(img[:, ::-1])
            inst.fliplr(w)
        else:
            sample["img"] = np.ascontiguousarray(img[::-1])
            b = inst.boxes.copy()
            b[:, 1], b[:, 3] = h - inst.boxes[:, 3], h - inst.boxes[:, 1]
            inst.boxes = b
            inst.segments = inst.segments.copy()
            inst.segments[..., 1] = h - inst.segments[..., 1]
        return sample


def train_transforms(imgsz: int, hyp: dict | None = None) -> Compose:
    """The post-mosaic training chain: affine (with letterbox when mosaic is off), HSV, flips."""
    hyp = dict(DEFAULT_HYP, **(hyp or {}))
    t: list[Callable] = [
        RandomAffine(
            degrees=hyp["degrees"],
            translate=hyp["translate"],
            scale=hyp["scale"],
            shear=hyp["shear"],
            perspective=hyp["perspective"],
            pre_transform=LetterBox((imgsz, imgsz)),
        ),
        RandomHSV(hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"]),
    ]
    if hyp["flipud"]:
        t.append(RandomFlip(hyp["flipud"], "vertical"))
    if hyp["fliplr"]:
        t.append(RandomFlip(hyp["fliplr"], "horizontal"))
    return Compose(t)


DEFAULT_HYP = {
    "mosaic": 1.0,
    "degrees": 0.0,
    "translate": 0.1,
    "scale": 0.5,
    "shear": 0.0,
    "perspective": 0.0,
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "flipud": 0.0,
    "fliplr": 0.5,
}
