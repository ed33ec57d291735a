"""Plain numpy reference for instance masks: the whole-map way, no shortcuts.

Mirrors Ultralytics 8.4:

* ``process_mask_native`` (retina masks): logits = coefs @ protos; ``scale_masks`` crops the
  unpadded proto region and bilinearly upsamples it to the original size; ``crop_mask`` keeps
  pixels with ``x1 <= c < x2`` and ``y1 <= r < y2``; mask = logit > 0.
* ``process_mask`` (default): crop at proto scale with the box scaled by ``mw/in_w``, ``mh/in_h``
  (cells outside become 0), *then* upsample to the input size, > 0. The edgeseg contract maps that
  input-resolution mask back to original pixels by nearest sampling at pixel centres.

Bilinear upsampling is torch's ``F.interpolate(mode="bilinear", align_corners=False)`` written
out in float32. Non-finite logits count as background and are counted.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def bilinear_table(in_size: int, out_size: int):
    """Per output index: the two source indices and weights torch's bilinear upsampling uses."""
    scale = F32(in_size) / F32(out_size)
    d = np.arange(out_size, dtype=np.int64).astype(F32)
    # torch's CPU (AVX2) and CUDA builds evaluate scale * (d + 0.5) - 0.5 as one fused multiply-add;
    # float64 holds the exact float32 product, so this is fma rounded once to float32.
    src = (np.float64(scale) * (d + F32(0.5)).astype(np.float64) - 0.5).astype(F32)
    src = np.maximum(src, F32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam = np.clip(src - i0.astype(F32), F32(0), F32(1)).astype(F32)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    return i0, i1, (F32(1) - lam).astype(F32), lam


def upsample(maps: np.ndarray, out_h: int, out_w: int, rows=None, cols=None) -> np.ndarray:
    """Bilinear upsample [n, h, w] float32 maps to (out_h, out_w); optionally only at some rows/cols."""
    _n, h, w = maps.shape
    y0, y1, h0, h1 = bilinear_table(h, out_h)
    x0, x1, w0, w1 = bilinear_table(w, out_w)
    if rows is not None:
        y0, y1, h0, h1 = y0[rows], y1[rows], h0[rows], h1[rows]
    if cols is not None:
        x0, x1, w0, w1 = x0[cols], x1[cols], w0[cols], w1[cols]
    with np.errstate(invalid="ignore", over="ignore"):
        top, bot = maps[:, y0], maps[:, y1]
        t0 = top[:, :, x0] * w0 + top[:, :, x1] * w1
        t1 = bot[:, :, x0] * w0 + bot[:, :, x1] * w1
        return t0 * h0[:, None] + t1 * h1[:, None]


def proto_logits(protos: np.ndarray, coefs: np.ndarray, layout: str = "chw") -> np.ndarray:
    """coefs @ protos -> [n, mh, mw] float32."""
    p = np.asarray(protos, dtype=F32)
    if p.ndim == 4:
        p = p[0]
    if layout == "hwc":
        p = np.transpose(p, (2, 0, 1))
    nm, mh, mw = p.shape
    with np.errstate(invalid="ignore", over="ignore"):
        return (np.asarray(coefs, dtype=F32) @ p.reshape(nm, -1)).reshape(-1, mh, mw).astype(F32)


def unpadded_region(mh: int, mw: int, orig_h: int, orig_w: int):
    """(top, bottom, left, right) of the proto map that scale_masks keeps (Python round)."""
    gain = min(mh / orig_h, mw / orig_w)
    pad_w, pad_h = (mw - orig_w * gain) / 2, (mh - orig_h * gain) / 2
    top, left = round(pad_h - 0.1), round(pad_w - 0.1)
    bottom, right = mh - round(pad_h + 0.1), mw - round(pad_w + 0.1)
    # edgeseg keeps at least one cell where degenerate aspect ratios would round it away
    top, left = min(max(top, 0), mh - 1), min(max(left, 0), mw - 1)
    bottom, right = min(max(bottom, top + 1), mh), min(max(right, left + 1), mw)
    return top, bottom, left, right


def masks_native_ref(protos, coefs, boxes, orig_shape, layout="chw", rows=None, cols=None):
    """Full-frame retina masks: (bool [n, H, W] (or the selected rows/cols), nonfinite count)."""
    logits = proto_logits(protos, coefs, layout)
    _n, mh, mw = logits.shape
    H, W = orig_shape
    top, bottom, left, right = unpadded_region(mh, mw, H, W)
    vals = upsample(logits[:, top:bottom, left:right], H, W, rows, cols)
    r = (np.arange(H) if rows is None else np.arange(H)[rows]).astype(F32)
    c = (np.arange(W) if cols is None else np.arange(W)[cols]).astype(F32)
    b = np.asarray(boxes, dtype=F32).reshape(-1, 4)
    keep = (
        (c[None, None, :] >= b[:, 0, None, None])
        & (c[None, None, :] < b[:, 2, None, None])
        & (r[None, :, None] >= b[:, 1, None, None])
        & (r[None, :, None] < b[:, 3, None, None])
    )
    finite = np.isfinite(vals)
    with np.errstate(invalid="ignore"):
        masks = keep & finite & (vals > 0)
    return masks, int((keep & ~finite).sum())


def input_to_orig_index(orig: int, new: int, pad: int) -> np.ndarray:
    """Nearest input pixel (inside the unpadded region) for each original pixel centre."""
    k = np.arange(orig, dtype=np.int64)
    return pad + np.minimum(((2 * k + 1) * new) // (2 * orig), new - 1)


def masks_input_ref(protos, coefs, boxes_input, geom, layout="chw"):
    """process_mask at input resolution, mapped back to original pixels: (bool [n, H, W], nonfinite).

    geom: mapping/object with in_h, in_w, pad_left, pad_top, new_w, new_h, orig_h, orig_w.
    """
    g = geom if isinstance(geom, dict) else vars(geom)
    logits = proto_logits(protos, coefs, layout)
    _n, mh, mw = logits.shape
    b = np.asarray(boxes_input, dtype=F32).reshape(-1, 4)
    ratios = np.array([mw / g["in_w"], mh / g["in_h"], mw / g["in_w"], mh / g["in_h"]], dtype=F32)
    pb = b * ratios  # float32 like torch
    c = np.arange(mw, dtype=F32)
    r = np.arange(mh, dtype=F32)
    keep = (
        (c[None, None, :] >= pb[:, 0, None, None])
        & (c[None, None, :] < pb[:, 2, None, None])
        & (r[None, :, None] >= pb[:, 1, None, None])
        & (r[None, :, None] < pb[:, 3, None, None])
    )
    cropped = np.where(keep, logits, F32(0))  # crop before upsampling (8.4 order)
    iy = input_to_orig_index(g["orig_h"], g["new_h"], g["pad_top"])
    ix = input_to_orig_index(g["orig_w"], g["new_w"], g["pad_left"])
    vals = upsample(cropped, g["in_h"], g["in_w"], rows=iy, cols=ix)
    finite = np.isfinite(vals)
    with np.errstate(invalid="ignore"):
        masks = finite & (vals > 0)
    return masks, int((~finite).sum())
