"""Plain numpy letterbox reference: Ultralytics geometry + float bilinear (cv2 INTER_LINEAR convention)."""

from __future__ import annotations

import numpy as np


def geometry(orig_h, orig_w, new_h, new_w, *, scaleup=True, auto=False, stride=32):
    """(scale, left, top, new_w, new_h, in_w, in_h) exactly as Ultralytics LetterBox computes them."""
    r = min(new_h / orig_h, new_w / orig_w)
    if not scaleup:
        r = min(r, 1.0)
    uw, uh = max(1, int(round(orig_w * r))), max(1, int(round(orig_h * r)))
    dw, dh = new_w - uw, new_h - uh
    if auto:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return r, left, top, uw, uh, uw + left + right, uh + top + bottom


def _taps(src: int, dst: int):
    d = np.arange(dst, dtype=np.float64)
    s = ((d + 0.5) * (src / dst) - 0.5).astype(np.float32).astype(np.float64)
    i0 = np.floor(s).astype(np.int64)
    f = s - i0
    low = i0 < 0
    i0[low], f[low] = 0, 0.0
    high = i0 >= src - 1
    i0[high], f[high] = src - 1, 0.0
    i1 = np.minimum(i0 + 1, src - 1)
    return i0, i1, f


def resize_bilinear(img: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    """Float bilinear resize with half-pixel centres and clamped borders, rounded to uint8."""
    h, w = img.shape[:2]
    if (w, h) == (new_w, new_h):
        return img.copy()
    x0, x1, fx = _taps(w, new_w)
    y0, y1, fy = _taps(h, new_h)
    src = img.astype(np.float64)
    rows = src[y0] * (1 - fy)[:, None, None] + src[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def letterbox(
    img,
    new_shape=640,
    *,
    scaleup=True,
    auto=False,
    stride=32,
    fill=114,
    layout="nchw",
    dtype="float32",
    bgr_to_rgb=True,
):
    new_h, new_w = (new_shape, new_shape) if isinstance(new_shape, int) else new_shape
    r, left, top, uw, uh, in_w, in_h = geometry(
        img.shape[0], img.shape[1], new_h, new_w, scaleup=scaleup, auto=auto, stride=stride
    )
    canvas = np.full((in_h, in_w, 3), fill, dtype=np.uint8)
    canvas[top : top + uh, left : left + uw] = resize_bilinear(img, uw, uh)
    if bgr_to_rgb:
        canvas = canvas[..., ::-1]
    if dtype == "float32":
        t = canvas.astype(np.float32) / np.float32(255)
    elif dtype == "uint8":
        t = canvas.copy()
    else:
        t = (canvas.astype(np.int16) - 128).astype(np.int8)
    t = t.transpose(2, 0, 1)[None] if layout == "nchw" else t[None]
    return np.ascontiguousarray(t), (r, left, top, uw, uh, in_w, in_h)


def scale_boxes(boxes, scale, pad_left, pad_top, orig_w, orig_h, clip=True):
    b = boxes.astype(np.float64).copy()
    b[:, [0, 2]] = (b[:, [0, 2]] - pad_left) / scale
    b[:, [1, 3]] = (b[:, [1, 3]] - pad_top) / scale
    if clip:
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, orig_w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, orig_h)
    return b
