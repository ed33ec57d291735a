"""Instance masks from YOLO-seg prototypes, computed only inside each instance's region.

``masks_native`` follows Ultralytics ``retina_masks=True`` (``process_mask_native``): masks at the
original resolution. ``masks_input`` follows the default ``process_mask``: masks at model-input
resolution (crop at proto scale, then upsample), mapped back to original pixels. Both return a
compact :class:`MaskSet` -- per instance a pixel rectangle and a 0/1 bitmap -- so no full-frame
array is built unless asked for with :meth:`MaskSet.full` or :meth:`MaskSet.label_map`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeseg.ops._native import core
from edgeseg.ops.letterbox import LetterboxInfo
from edgeseg.ops.selection import row_index, row_indices

__all__ = ["MaskSet", "masks_input", "masks_native"]


@dataclass
class MaskSet:
    """Compact instance masks: per instance an integer pixel rectangle of the original image and a uint8 0/1 bitmap covering it."""

    rects: NDArray[np.int32]  # int32 [n,4] x0,y0,x1,y1 (x1,y1 exclusive), original-image pixels
    data: NDArray[np.uint8]  # uint8 flat concatenation of all bitmaps (row-major, each (y1-y0)x(x1-x0))
    offsets: NDArray[np.int64]  # int64 [n+1] start of each bitmap in data
    image_shape: tuple[int, int]  # (H, W) of the original image
    nonfinite: int = 0  # pixels whose logit was NaN/inf (treated as background)

    def __post_init__(self) -> None:
        self.rects = np.ascontiguousarray(self.rects, dtype=np.int32).reshape(-1, 4)
        self.data = np.ascontiguousarray(self.data, dtype=np.uint8).reshape(-1)
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64).reshape(-1)
        try:
            h, w = (int(v) for v in self.image_shape)
        except (TypeError, ValueError):
            raise ValueError(f"image_shape must be (H, W), got {self.image_shape!r}") from None
        if h < 1 or w < 1:
            raise ValueError(f"image_shape must be positive, got {(h, w)}")
        self.image_shape = (h, w)
        n = len(self.rects)
        if len(self.offsets) != n + 1:
            raise ValueError(f"offsets must have n+1={n + 1} entries, got {len(self.offsets)}")
        r = self.rects
        if n and (
            (r[:, 0] < 0).any()
            or (r[:, 1] < 0).any()
            or (r[:, 2] > w).any()
            or (r[:, 3] > h).any()
            or (r[:, 2] < r[:, 0]).any()
            or (r[:, 3] < r[:, 1]).any()
        ):
            raise ValueError("rects must satisfy 0 <= x0 <= x1 <= W and 0 <= y0 <= y1 <= H")
        sizes = (r[:, 2].astype(np.int64) - r[:, 0]) * (r[:, 3].astype(np.int64) - r[:, 1])
        if self.offsets[0] != 0 or not np.array_equal(np.diff(self.offsets), sizes):
            raise ValueError("offsets do not match the rectangle sizes")
        if self.offsets[-1] != len(self.data):
            raise ValueError(f"data has {len(self.data)} bytes, offsets say {int(self.offsets[-1])}")

    def __len__(self) -> int:
        return len(self.rects)

    def bitmap(self, i: int) -> NDArray[np.uint8]:
        """(h_i, w_i) uint8 view of instance i's bitmap."""
        i = row_index(i, len(self), "masks")
        x0, y0, x1, y1 = (int(v) for v in self.rects[i])
        return self.data[self.offsets[i] : self.offsets[i + 1]].reshape(y1 - y0, x1 - x0)

    def select(self, idx: ArrayLike | slice) -> MaskSet:
        """A new MaskSet with the chosen instances (bool mask / integer indices / slice)."""
        ind = row_indices(idx, len(self), "masks")
        rects, data, offsets = core.mask_rows(self.rects, self.data, self.offsets, ind)
        # The rows of a checked set are checked: the new set is built without checking them again (a tracker
        # selects rows every frame).
        out = object.__new__(MaskSet)
        out.rects, out.data, out.offsets = rects, data, offsets
        out.image_shape, out.nonfinite = self.image_shape, self.nonfinite
        return out

    def areas(self) -> NDArray[np.int64]:
        """int64 [n] foreground pixel counts."""
        # One count_nonzero per instance: O(total box pixels) without a full-length temporary.
        off = self.offsets
        return np.fromiter(
            (np.count_nonzero(self.data[off[i] : off[i + 1]]) for i in range(len(self))),
            dtype=np.int64,
            count=len(self),
        )

    def full(self, idx: ArrayLike | slice | None = None) -> NDArray[np.bool_]:
        """bool [k, H, W] full-frame masks (built on demand only)."""
        ind = row_indices(idx, len(self), "masks")
        h, w = self.image_shape
        out = np.zeros((len(ind), h, w), dtype=bool)
        for j, i in enumerate(ind):
            x0, y0, x1, y1 = (int(v) for v in self.rects[i])
            out[j, y0:y1, x0:x1] = self.bitmap(i) != 0
        return out

    def label_map(self, order: ArrayLike | slice | None = None) -> NDArray[np.int32]:
        """int32 [H, W]: 0 background, i+1 for instance i; later instances in ``order`` paint over earlier."""
        ind = row_indices(order, len(self), "masks")
        out = np.zeros(self.image_shape, dtype=np.int32)
        for i in ind:
            x0, y0, x1, y1 = (int(v) for v in self.rects[i])
            region = out[y0:y1, x0:x1]
            region[self.bitmap(i) != 0] = i + 1
        return out

    @classmethod
    def empty(cls, image_shape: tuple[int, int]) -> MaskSet:
        # __post_init__ checks image_shape and stores it as a tuple of two ints
        return cls(np.zeros((0, 4), np.int32), np.zeros(0, np.uint8), np.zeros(1, np.int64), image_shape)


def _float32(name: str, a: ArrayLike) -> NDArray[np.float32]:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _layout(layout: str) -> bool:
    if layout not in ("chw", "hwc"):
        raise ValueError(f"layout must be 'chw' or 'hwc', got {layout!r}")
    return layout == "hwc"


def _field(info: LetterboxInfo, name: str) -> int:
    try:
        v = getattr(info, name)
    except AttributeError:
        raise ValueError(f"info must be a LetterboxInfo (missing field {name!r})") from None
    try:
        return operator.index(v)
    except TypeError:
        raise ValueError(f"info.{name} must be an integer, got {v!r}") from None


def _coef_rows(
    coefs: NDArray[np.float32], boxes: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    if coefs.ndim == 1 and coefs.size == 0:
        coefs = coefs.reshape(0, 0)
    if boxes.ndim == 1 and boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    return coefs, boxes


def _pack(
    result: tuple[NDArray[np.int32], NDArray[np.uint8], NDArray[np.int64], int], image_shape: tuple[int, int]
) -> MaskSet:
    rects, data, offsets, nonfinite = result
    return MaskSet(rects, data, offsets, image_shape, int(nonfinite))


def masks_native(
    protos: ArrayLike, coefs: ArrayLike, boxes: ArrayLike, info: LetterboxInfo, *, layout: str = "chw", threads: int = 0
) -> MaskSet:
    """Retina masks (Ultralytics ``process_mask_native``), computed only inside each box.

    protos: float32 [nm, mh, mw] ("chw") or [mh, mw, nm] ("hwc"), optional leading batch dim of 1.
    coefs: [n, nm]; boxes: [n, 4] xyxy in original-image pixels (mapped back and clipped).
    info: the LetterboxInfo of the frame (only orig_h, orig_w are used).
    threads: 0 = automatic (threads only for large pixel counts), 1 = single-threaded.
    """
    hwc = _layout(layout)
    protos, coefs, boxes = _float32("protos", protos), _float32("coefs", coefs), _float32("boxes", boxes)
    coefs, boxes = _coef_rows(coefs, boxes)
    if coefs.shape[0] == 0 and coefs.ndim == 2 and coefs.shape[1] == 0 and protos.ndim in (3, 4):
        coefs = np.zeros((0, protos.shape[-1] if hwc else protos.shape[-3]), np.float32)
    h, w = _field(info, "orig_h"), _field(info, "orig_w")
    res = core.masks_native(protos, coefs, boxes, h, w, hwc, int(threads))
    return _pack(res, (h, w))


def masks_input(
    protos: ArrayLike,
    coefs: ArrayLike,
    boxes_input: ArrayLike,
    info: LetterboxInfo,
    *,
    layout: str = "chw",
    threads: int = 0,
) -> MaskSet:
    """Default Ultralytics masks (``process_mask``) at input resolution, mapped to original pixels.

    The input-resolution mask is sampled (nearest, at original pixel centres) inside the unpadded
    region. boxes_input: [n, 4] xyxy in model-input pixels. Other arguments as :func:`masks_native`.
    """
    hwc = _layout(layout)
    protos, coefs, boxes = _float32("protos", protos), _float32("coefs", coefs), _float32("boxes_input", boxes_input)
    coefs, boxes = _coef_rows(coefs, boxes)
    if coefs.shape[0] == 0 and coefs.ndim == 2 and coefs.shape[1] == 0 and protos.ndim in (3, 4):
        coefs = np.zeros((0, protos.shape[-1] if hwc else protos.shape[-3]), np.float32)
    f = {k: _field(info, k) for k in ("in_h", "in_w", "pad_left", "pad_top", "new_w", "new_h", "orig_h", "orig_w")}
    res = core.masks_input(
        protos,
        coefs,
        boxes,
        f["in_h"],
        f["in_w"],
        f["pad_left"],
        f["pad_top"],
        f["new_w"],
        f["new_h"],
        f["orig_h"],
        f["orig_w"],
        hwc,
        int(threads),
    )
    return _pack(res, (f["orig_h"], f["orig_w"]))
