"""Training plots (matplotlib, imported lazily with the Agg backend; only the main process plots).

* :func:`plot_results` -- loss, lr and mAP curves per epoch from ``results.csv`` -> ``results.png``;
* :func:`plot_pr_curves` -- precision-recall curves per class (box and mask) when the validation result
  carries them, else each class's precision/recall operating point -> ``PR_curve.png``;
* :func:`plot_predictions` -- a grid of validation images with the model's masks and boxes ->
  ``val_predictions.jpg`` (drawn with :func:`edgeseg.annotate.draw`).

Every function returns the written path, or None when there was nothing to plot.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_pr_curves", "plot_predictions", "plot_results", "read_results"]

LOGGER = logging.getLogger("edgeseg.train")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_results(csv_path) -> dict[str, list[float]]:
    """``results.csv`` as {column: values} (numbers; unparsable cells become NaN)."""
    path = Path(csv_path)
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        return {}
    keys = [k.strip() for k in rows[0]]
    out: dict[str, list[float]] = {k: [] for k in keys}
    for row in rows[1:]:
        for k, cell in zip(keys, row):
            try:
                out[k].append(float(cell))
            except ValueError:
                out[k].append(float("nan"))
    return out


def _smooth(y: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    n = len(y)
    k = int(round(n * fraction * 2)) // 2 + 1
    if k < 3 or n < 5:
        return y
    pad = np.pad(y, (k // 2, k // 2), mode="edge")
    return np.convolve(pad, np.ones(k) / k, mode="valid")


def plot_results(csv_path, out_path=None) -> Path | None:
    """One panel per loss / metric / lr column of results.csv (raw values and a smoothed line)."""
    data = read_results(csv_path)
    if not data or "epoch" not in data:
        return None
    out_path = Path(out_path) if out_path else Path(csv_path).with_name("results.png")
    x = np.asarray(data["epoch"], float)
    keys = [k for k in data if k not in ("epoch", "time")]
    if not keys:
        return None
    plt = _plt()
    cols = 5
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False, tight_layout=True)
    for ax in axes.ravel()[len(keys) :]:
        ax.axis("off")
    for ax, key in zip(axes.ravel(), keys):
        y = np.asarray(data[key], float)
        ok = np.isfinite(y)
        ax.plot(x[ok], y[ok], marker=".", linewidth=1.5, markersize=6, label="results")
        if ok.sum() >= 5:
            ax.plot(x[ok], _smooth(y[ok]), ":", linewidth=1.5, label="smooth")
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=7)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path


def _names(names: Any, c: int) -> str:
    if isinstance(names, Mapping):
        return str(names.get(int(c), c))
    if isinstance(names, (list, tuple)) and 0 <= int(c) < len(names):
        return str(names[int(c)])
    return str(c)


def _curves(metric: Any):
    """(recall grid, [n_cls, n_pts] precision) when the metric result carries PR curves, else None."""
    for holder in (metric, getattr(metric, "per_class", None)):
        if holder is None:
            continue
        for px_name, py_name in (("px", "prec_values"), ("recall_grid", "pr_curves"), ("px", "py")):
            px, py = getattr(holder, px_name, None), getattr(holder, py_name, None)
            if px is not None and py is not None:
                px, py = np.asarray(px, float), np.asarray(py, float)
                if py.ndim == 2 and py.shape[-1] == px.shape[-1] and py.shape[0]:
                    return px, py
    return None


def plot_pr_curves(results: Any, out_path, names: Any = None) -> Path | None:
    """Box and mask precision-recall per class from a ``SegmentResults`` (or an object with ``box``/``mask``).

    With per-class curves (``px``/``prec_values`` style attributes) they are drawn with their mean;
    otherwise every class's (recall, precision) operating point at the max-F1 confidence is shown,
    with mAP50 in the legend."""
    parts = [(tag, getattr(results, attr, None)) for tag, attr in (("Box", "box"), ("Mask", "mask"))]
    parts = [(t, m) for t, m in parts if m is not None]
    if not parts:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(parts), figsize=(6 * len(parts), 5), squeeze=False, tight_layout=True)
    for ax, (tag, metric) in zip(axes.ravel(), parts):
        per = getattr(metric, "per_class", None)
        classes = np.asarray(getattr(per, "classes", []), int) if per is not None else np.zeros(0, int)
        curves = _curves(metric)
        map50 = float(getattr(metric, "map50", float("nan")))
        if curves is not None:
            px, py = curves
            show = py.shape[0] <= 21
            for i, y in enumerate(py):
                label = None
                if show and i < len(classes):
                    ap50 = float(per.ap50[i]) if per is not None and len(per.ap50) > i else float("nan")
                    label = f"{_names(names, classes[i])} {ap50:.3f}"
                ax.plot(px, y, linewidth=1, label=label, color=None if show else "grey")
            ax.plot(px, py.mean(0), linewidth=3, color="blue", label=f"all classes {map50:.3f} mAP@0.5")
        elif per is not None and len(classes):
            rec, prec = np.asarray(per.recall, float), np.asarray(per.precision, float)
            ax.scatter(rec, prec, s=25, label="per-class operating point (max F1)")
            if len(classes) <= 20:
                for c, r, p in zip(classes, rec, prec):
                    ax.annotate(_names(names, c), (r, p), fontsize=7, xytext=(3, 3), textcoords="offset points")
            ax.scatter(
                [float(getattr(metric, "recall", np.nan))],
                [float(getattr(metric, "precision", np.nan))],
                s=80,
                marker="*",
                color="red",
                label=f"mean (mAP@0.5 {map50:.3f})",
            )
        else:
            ax.text(0.5, 0.5, "no ground truth", ha="center", va="center")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Recall")
        ax.set_ylabel("Precision")
        ax.set_title(f"{tag} precision-recall")
        ax.legend(fontsize=7, loc="lower left")
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path


def _predict_images(model, images: Sequence[np.ndarray], nc: int, conf: float, iou: float):
    """Run ``model`` on letterboxed BGR images of one shape; yields ValPredictions per image."""
    import torch

    from edgeseg.val.postprocess import postprocess

    param = next(model.parameters())
    arr = np.stack([im[..., ::-1].transpose(2, 0, 1) for im in images])
    x = torch.from_numpy(np.ascontiguousarray(arr)).to(param.device).float() / 255
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            y, protos = model(x)
    finally:
        model.train(was_training)
    y, protos = y.float().cpu().numpy(), protos.float().cpu().numpy()
    layout = "e2e" if getattr(model, "end2end", False) else "cn"  # YOLO26's NMS-free rows, else [4+nc+nm, A]
    for i, im in enumerate(images):
        yield postprocess(y[i], protos[i], nc, im.shape[:2], conf=conf, iou=iou, max_det=100, preds_layout=layout)


def _draw(img: np.ndarray, pred, names) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    n = len(pred)
    full = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        full[i] = cv2.resize(pred.masks[i].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    try:
        from edgeseg.annotate import draw
        from edgeseg.detections import Detections
        from edgeseg.ops.masks import MaskSet

        rects = np.tile(np.array([0, 0, w, h], np.int32), (n, 1))
        data = full.reshape(-1)
        offsets = np.arange(n + 1, dtype=np.int64) * (h * w)
        masks = MaskSet(rects=rects, data=data, offsets=offsets, image_shape=(h, w))
        boxes = pred.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        det = Detections(
            boxes, pred.scores, pred.classes.astype(np.int32), names=names, masks=masks, image_shape=(h, w)
        )
        return draw(img, det, alpha=0.45)
    except Exception as exc:  # drawing helpers unavailable: plain overlay
        LOGGER.debug("annotate.draw unavailable (%s); plain overlay", exc)
        out = img.copy()
        for i in range(n):
            color = np.array([(37 * (pred.classes[i] + 1)) % 255, (97 * (pred.classes[i] + 3)) % 255, 200], np.uint8)
            m = full[i].astype(bool)
            out[m] = (0.55 * out[m] + 0.45 * color).astype(np.uint8)
            x1, y1, x2, y2 = (int(round(v)) for v in pred.boxes[i])
            cv2.rectangle(out, (x1, y1), (x2, y2), tuple(int(c) for c in color), 1)
        return out


def plot_predictions(
    model,
    data,
    out_path,
    *,
    imgsz: int = 640,
    max_images: int = 16,
    conf: float = 0.25,
    iou: float = 0.7,
    names: Any = None,
) -> Path | None:
    """Grid of up to ``max_images`` validation images (letterboxed square) with predicted masks and boxes."""
    import cv2

    from edgeseg.val.data import ValDataset, load_split

    cfg, sources = load_split(data, "val")
    ds = ValDataset(sources, nc=cfg.nc, imgsz=imgsz, rect=False)
    n = min(len(ds), max_images)
    if n == 0:
        return None
    names = names if names is not None else dict(getattr(model, "names", None) or cfg.names)
    nc = int(getattr(model, "nc", cfg.nc))
    tiles = []
    step = 4
    for start in range(0, n, step):
        samples = [ds[i] for i in range(start, min(start + step, n))]
        imgs = [s.img for s in samples]
        for img, pred in zip(imgs, _predict_images(model, imgs, nc, conf, iou)):
            tiles.append(_draw(img, pred, names))
    cols = int(math.ceil(math.sqrt(len(tiles))))
    rows = int(math.ceil(len(tiles) / cols))
    th, tw = tiles[0].shape[:2]
    scale = min(1.0, 1920 / (cols * tw))
    th2, tw2 = max(1, int(th * scale)), max(1, int(tw * scale))
    grid = np.full((rows * th2, cols * tw2, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        if tile.shape[:2] != (th2, tw2):
            tile = cv2.resize(tile, (tw2, th2), interpolation=cv2.INTER_AREA)
        grid[r * th2 : (r + 1) * th2, c * tw2 : (c + 1) * tw2] = tile
        cv2.rectangle(grid, (c * tw2, r * th2), ((c + 1) * tw2 - 1, (r + 1) * th2 - 1), (255, 255, 255), 1)
    out_path = Path(out_path)
    if not cv2.imwrite(str(out_path), grid):
        raise OSError(f"cannot write {out_path}")
    return out_path
