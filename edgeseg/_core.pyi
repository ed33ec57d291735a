"""Typed interface of the private native core ``edgeseg._core`` (built from csrc/ with pybind11).

Use :mod:`edgeseg.ops`, not this module. Argument names, their order and their defaults are those of the
bindings (csrc/bind_*.cpp); tests/test_core_stub.py checks them against the compiled module's signatures.
The types are the ones the bindings accept without raising: arrays must already have the dtype named here
(no silent conversion); the stub is stricter than pybind11's own signatures for scalars (``int``/``float``
where pybind11 reports ``SupportsInt | SupportsIndex`` / ``SupportsFloat | SupportsIndex``).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

# (scale, zero_point) of one quantised tensor.
_Quant = tuple[float, int]
# (boxes [k, 4] xyxy, scores [k], class_ids [k], anchors [k], coefs [k, nm], nonfinite)
_Candidates = tuple[
    NDArray[np.float32], NDArray[np.float32], NDArray[np.int32], NDArray[np.int32], NDArray[np.float32], int
]
# (rects [n, 4] int32 x0, y0, x1, y1, data: concatenated uint8 bitmaps, offsets [n + 1] int64, nonfinite)
_Masks = tuple[NDArray[np.int32], NDArray[np.uint8], NDArray[np.int64], int]
# (track_id, state, class_id, box [k, 4] xyxy, score, hits, age, frames_since_update)
_Tracks = tuple[
    NDArray[np.int64],
    NDArray[np.int32],
    NDArray[np.int32],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int64],
]
# (scale, pad_left, pad_top, new_w, new_h, in_w, in_h, orig_w, orig_h)
_Geometry = tuple[float, int, int, int, int, int, int, int, int]

def letterbox_geometry(
    orig_h: int,
    orig_w: int,
    target_h: int,
    target_w: int,
    scaleup: bool = True,
    auto: bool = False,
    stride: int = 32,
) -> _Geometry:
    """Ultralytics letterbox geometry: (scale, pad_left, pad_top, new_w, new_h, in_w, in_h, orig_w, orig_h)."""

def letterbox(
    image: NDArray[np.uint8],
    target_h: int,
    target_w: int,
    scaleup: bool = True,
    auto: bool = False,
    stride: int = 32,
    fill: int = 114,
    layout: int = 0,
    dtype: int = 0,
    bgr_to_rgb: bool = True,
    out: NDArray[Any] | None = None,
    threads: int = 0,
) -> tuple[NDArray[Any], _Geometry]:
    """Resize + pad + channel swap + normalise + layout in one pass. Returns (out, geometry tuple).

    ``layout``: 0 nchw, 1 nhwc; ``dtype``: 0 float32, 1 uint8, 2 int8 (the dtype of the returned array and of
    ``out``, which must be C-contiguous with exactly the output's shape).
    """

def decode(
    output: NDArray[np.float32],
    nc: int,
    conf: float = 0.25,
    multi_label: bool = False,
    max_nms: int = 30000,
    keep: NDArray[np.uint8] | None = None,
    cn: bool = True,
    sx: float = 1.0,
    sy: float = 1.0,
) -> _Candidates:
    """Decode candidates from a 2-D float32 head output.

    Returns (boxes, scores, class_ids, anchors, coefs, nonfinite).
    """

def nms(
    boxes: NDArray[np.float32],
    scores: NDArray[np.float32],
    class_ids: NDArray[np.int32] | None = None,
    iou: float = 0.7,
    max_det: int = 300,
) -> NDArray[np.int64]:
    """Greedy NMS (torchvision semantics, class-aware when class_ids is given). Returns int64 kept indices."""

def topk_pairs(anchors: NDArray[np.int32], scores: NDArray[np.float32], k: int) -> NDArray[np.int64]:
    """YOLO26's one-to-one selection of (anchor, class) pairs. Returns int64 indices, by score descending."""

def mask_rows(
    rects: NDArray[np.int32], data: NDArray[np.uint8], offsets: NDArray[np.int64], rows: NDArray[np.int64]
) -> tuple[NDArray[np.int32], NDArray[np.uint8], NDArray[np.int64]]:
    """Rows of a MaskSet (int64 indices in [0, n)), in order: (rects, data, offsets) with the bitmaps copied."""

def masks_native(
    protos: NDArray[np.float32],
    coefs: NDArray[np.float32],
    boxes: NDArray[np.float32],
    orig_h: int,
    orig_w: int,
    hwc: bool = False,
    threads: int = 0,
) -> _Masks:
    """Retina (process_mask_native) masks, region-only. Returns (rects, data, offsets, nonfinite)."""

def masks_input(
    protos: NDArray[np.float32],
    coefs: NDArray[np.float32],
    boxes: NDArray[np.float32],
    in_h: int,
    in_w: int,
    pad_left: int,
    pad_top: int,
    new_w: int,
    new_h: int,
    orig_h: int,
    orig_w: int,
    hwc: bool = False,
    threads: int = 0,
) -> _Masks:
    """Input-resolution (process_mask) masks mapped to original pixels, region-only.

    Returns (rects, data, offsets, nonfinite).
    """

def polygons(
    rects: NDArray[np.int32],
    data: NDArray[np.uint8],
    offsets: NDArray[np.int64],
    all: bool = False,
) -> list[list[NDArray[np.float32]]]:
    """External contours per compact mask: list (per instance) of lists of float32 [k, 2] (x, y) arrays."""

def decode_split(
    box: Sequence[NDArray[Any]],
    cls: Sequence[NDArray[Any]],
    coef: Sequence[NDArray[Any]],
    box_q: Sequence[_Quant],
    cls_q: Sequence[_Quant],
    coef_q: Sequence[_Quant],
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[float],
    nc: int,
    nm: int,
    reg_max: int,
    cn: bool,
    conf: float,
    multi_label: bool,
    max_nms: int,
    keep: NDArray[np.uint8] | None = None,
) -> _Candidates:
    """Candidates from split head outputs. Returns (boxes, scores, class_ids, anchors, coefs, nonfinite).

    ``box``/``cls``/``coef``: one array per level, all float32 or all int8 or all uint8.
    """

def decode_split_dense(
    box: Sequence[NDArray[Any]],
    cls: Sequence[NDArray[Any]],
    coef: Sequence[NDArray[Any]],
    box_q: Sequence[_Quant],
    cls_q: Sequence[_Quant],
    coef_q: Sequence[_Quant],
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[float],
    nc: int,
    nm: int,
    reg_max: int,
    cn: bool,
) -> NDArray[np.float32]:
    """Every anchor of split head outputs as a [4+nc+nm, N] float32 array (single-output layout)."""

def quantised_threshold(conf: float, scale: float, zero_point: float) -> float:
    """floor(logit(conf) / scale + zero_point): a quantised class logit q passes when q > this."""

def dequantize(q: NDArray[np.int8] | NDArray[np.uint8], scale: float, zero_point: float) -> NDArray[np.float32]:
    """(q - zero_point) * scale as float32, same shape; q int8/uint8, C-contiguous."""

class Tracker:
    """ByteTrack-style multi-object tracker (one thread at a time; calls are serialised)."""

    def __init__(
        self,
        high_thresh: float = 0.5,
        low_thresh: float = 0.1,
        new_track_thresh: float = 0.6,
        match_thresh: float = 0.2,
        low_match_thresh: float = 0.3,
        tentative_match_thresh: float = 0.3,
        min_hits: int = 2,
        lost_frames: int = 30,
        mask_weight: float = 0.0,
        class_consistent: bool = True,
    ) -> None: ...
    def update(
        self,
        boxes: NDArray[np.float32],
        scores: NDArray[np.float32],
        class_ids: NDArray[np.int32],
        rects: NDArray[np.int32] | None = None,
        data: NDArray[np.uint8] | None = None,
        offsets: NDArray[np.int64] | None = None,
        steps: int = 1,
    ) -> NDArray[np.int64]:
        """Advance by `steps` frames and associate the detections. Returns int64 [n] track ids (-1: none)."""

    def tracks(self) -> _Tracks:
        """Live tracks: (track_id, state, class_id, box [k, 4], score, hits, age, frames_since_update)."""

    def reset(self) -> None:
        """Drop every track; ids restart at 1."""

def linear_assignment(cost: NDArray[np.float64], limit: float) -> NDArray[np.int64]:
    """Exact assignment with lap.lapjv(extend_cost=True, cost_limit=limit) semantics.

    Returns int64 [n] column per row, -1 when unassigned.
    """
