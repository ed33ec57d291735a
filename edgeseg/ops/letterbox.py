"""Letterbox pre-processing: aspect-preserving resize + padding to the model input, in one native pass.

Geometry follows Ultralytics' ``LetterBox`` (``center=True``) exactly; the resize follows
``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` (half-pixel centres, clamped borders, 11-bit
fixed-point weights) to within one grey level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeseg.ops._native import core

__all__ = ["LetterboxInfo", "letterbox", "letterbox_geometry", "scale_boxes"]

_LAYOUTS = {"nchw": 0, "nhwc": 1}
_DTYPES = {"float32": 0, "uint8": 1, "int8": 2}
_MAX_SIDE = 1 << 16


@dataclass(frozen=True)
class LetterboxInfo:
    """How an original image maps into the padded model input."""

    scale: float  # r: input pixels per original pixel
    pad_left: int  # columns of padding on the left
    pad_top: int  # rows of padding on top
    new_w: int  # unpadded resized width = round(orig_w * r)
    new_h: int
    in_w: int  # model input width (padded)
    in_h: int
    orig_w: int
    orig_h: int


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _target(new_shape: int | Sequence[int]) -> tuple[int, int]:
    """``new_shape`` as (height, width); an int means a square input."""
    if isinstance(new_shape, (tuple, list)):
        if len(new_shape) != 2:
            raise ValueError(f"new_shape must be an int or a (height, width) pair, got {new_shape!r}")
        h, w = (_int(v, "new_shape") for v in new_shape)
    else:
        h = w = _int(new_shape, "new_shape")
    if h <= 0 or w <= 0:
        raise ValueError(f"new_shape must be positive, got {new_shape!r}")
    if h > _MAX_SIDE or w > _MAX_SIDE:
        raise ValueError(f"new_shape must be at most {_MAX_SIDE} per side, got {new_shape!r}")
    return h, w


def _stride(auto: bool, stride: int) -> int:
    stride = _int(stride, "stride")
    if auto and not 0 < stride <= _MAX_SIDE:
        raise ValueError(f"stride must be positive, got {stride}")
    return stride


def letterbox_geometry(
    orig_shape: tuple[int, int],
    new_shape: int | tuple[int, int] = 640,
    *,
    scaleup: bool = True,
    auto: bool = False,
    stride: int = 32,
) -> LetterboxInfo:
    """Geometry for an image of ``orig_shape`` = (height, width) letterboxed to ``new_shape`` = (h, w)."""
    if not isinstance(orig_shape, (tuple, list)) or len(orig_shape) < 2:
        raise ValueError(f"orig_shape must be (height, width), got {orig_shape!r}")
    oh, ow = _int(orig_shape[0], "orig_shape"), _int(orig_shape[1], "orig_shape")
    if oh <= 0 or ow <= 0:
        raise ValueError(f"orig_shape must be positive, got {tuple(orig_shape)!r}")
    th, tw = _target(new_shape)
    stride = _stride(auto, stride)
    return LetterboxInfo(*core.letterbox_geometry(oh, ow, th, tw, bool(scaleup), bool(auto), stride))


def letterbox(
    image: NDArray[np.uint8],
    new_shape: int | tuple[int, int] = 640,
    *,
    scaleup: bool = True,
    auto: bool = False,
    stride: int = 32,
    fill: int = 114,
    layout: str = "nchw",
    dtype: str = "float32",
    bgr_to_rgb: bool = True,
    out: NDArray[Any] | None = None,
    threads: int = 0,
) -> tuple[NDArray[Any], LetterboxInfo]:
    """Letterbox a uint8 HxWx3 BGR image into a model input tensor in one native pass.

    ``dtype`` "float32" gives values in [0, 1], "uint8" 0..255, "int8" pixel-128 (scale 1/255, zero
    point -128). ``layout`` "nchw" gives shape (1, 3, H, W), "nhwc" (1, H, W, 3). Pass ``out`` to reuse
    a buffer of exactly that shape/dtype (C-contiguous); it is returned filled. Non-contiguous views are
    read in place through their strides (no copy). ``threads``: bands of rows resized in parallel
    (0 = automatic: one per CPU for large frames, one for small ones; 1 = this thread only). The result
    does not depend on it.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}, got {layout!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    fill = _int(fill, "fill")
    if not 0 <= fill <= 255:
        raise ValueError(f"fill must be in 0..255, got {fill}")
    th, tw = _target(new_shape)
    stride = _stride(auto, stride)
    if out is not None and not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array or None, got {type(out).__name__}")
    tensor, geo = core.letterbox(
        image,
        th,
        tw,
        bool(scaleup),
        bool(auto),
        stride,
        fill,
        _LAYOUTS[layout],
        _DTYPES[dtype],
        bool(bgr_to_rgb),
        out,
        _threads(threads),
    )
    return tensor, LetterboxInfo(*geo)


def _threads(threads: int) -> int:
    threads = _int(threads, "threads")
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = automatic), got {threads}")
    return threads


def scale_boxes(boxes: ArrayLike, info: LetterboxInfo, *, clip: bool = True) -> NDArray[np.float32]:
    """Map xyxy boxes [n, 4] from model-input pixels to original-image pixels (new float32 array).

    ``(b - pad) / scale``, then clipped to [0, orig_w] x [0, orig_h] when ``clip``.
    """
    b = np.asarray(boxes)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape [n, 4], got {b.shape}")
    if not (np.issubdtype(b.dtype, np.floating) or np.issubdtype(b.dtype, np.integer)):
        raise ValueError(f"boxes must be numeric, got dtype {b.dtype}")
    if not isinstance(info, LetterboxInfo):
        raise ValueError(f"info must be a LetterboxInfo, got {type(info).__name__}")
    pad = np.array([info.pad_left, info.pad_top, info.pad_left, info.pad_top], dtype=np.float32)
    res: NDArray[np.float32] = (b.astype(np.float32, copy=True) - pad) / np.float32(info.scale)
    if clip:
        np.clip(res[:, 0::2], 0, info.orig_w, out=res[:, 0::2])
        np.clip(res[:, 1::2], 0, info.orig_h, out=res[:, 1::2])
    return res
