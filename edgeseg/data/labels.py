"""Find, parse and verify YOLO polygon labels for a list of images.

A label file sits where the image is, with the last ``/images/`` of the path replaced by ``/labels/``
and the suffix replaced by ``.txt``. Each row is ``cls x1 y1 x2 y2 ... xn yn`` (a polygon, coordinates
normalised to [0, 1]) or ``cls cx cy w h`` (a box, turned into its 4-corner polygon).

Bad input never crashes the scan: unreadable/corrupt images are dropped, broken rows (odd coordinate
count, non-numeric values, coordinates outside [0, 1] beyond :data:`COORD_TOL`, fewer than 3 points)
are skipped, and exact duplicate rows are removed -- each with a warning naming ``file:line`` and a
count in :class:`LabelSummary`. A class id outside ``[0, nc)`` is a dataset error and stops the scan
with :class:`DatasetError` naming ``file:line``.

Results are cached per dataset split (see :mod:`.label_cache`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..opencv import require_cv2
from .errors import DatasetError
from .label_cache import cache_path_for, dataset_hash, load_cache, save_cache
from .label_records import LOGGER, ImageLabels, LabelSummary, img2label_path

__all__ = [
    "ImageLabels",
    "LabelSummary",
    "img2label_path",
    "load_labels",
    "log_summary",
    "parse_label_text",
    "scan_labels",
    "verify_image",
]

COORD_TOL = 0.01  # normalised coordinates within [-tol, 1 + tol] are clipped to [0, 1]; beyond -> broken row
MIN_IMAGE_SIDE = 10  # images smaller than this (either side) are treated as corrupt
MAX_SHOWN_MESSAGES = 30


def _box_polygon(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)


def parse_label_text(text: str, label_file, nc: int) -> tuple[np.ndarray, list[np.ndarray], list[str], int, int]:
    """Parse a label file's text.

    Returns ``(cls [n] int64, segments list of [k,2] float32, messages, n_broken, n_duplicates)``.
    Raises DatasetError for a class id outside [0, nc).
    """
    cls: list[int] = []
    segs: list[np.ndarray] = []
    msgs: list[str] = []
    seen: dict[tuple[int, tuple[float, ...]], int] = {}
    n_broken = n_dup = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{label_file}:{lineno}"

        def broken(reason, where=where):
            nonlocal n_broken
            n_broken += 1
            msgs.append(f"{where}: skipped row ({reason})")

        try:
            values = [float(v) for v in parts]
        except ValueError:
            broken("non-numeric value")
            continue
        if not all(np.isfinite(values)):
            broken("non-finite value")
            continue
        c, coords = values[0], values[1:]
        if not float(c).is_integer():
            broken(f"class id {parts[0]!r} is not an integer")
            continue
        c = int(c)
        if c < 0 or c >= nc:
            raise DatasetError(
                f"{where}: class id {c} is out of range for a dataset with {nc} classes (valid ids 0..{nc - 1})"
            )
        if len(coords) % 2:
            broken(f"odd number of coordinates ({len(coords)})")
            continue
        if len(coords) == 4:
            pts = _box_polygon(*coords)
        elif len(coords) >= 6:
            pts = np.asarray(coords, np.float32).reshape(-1, 2)
        else:
            broken(f"{len(coords) // 2} point(s), a polygon needs at least 3")
            continue
        if pts.min() < -COORD_TOL or pts.max() > 1 + COORD_TOL:
            broken(f"coordinates outside [0, 1] (min {pts.min():.4g}, max {pts.max():.4g})")
            continue
        pts = np.clip(pts, 0.0, 1.0)
        if pts[:, 0].max() - pts[:, 0].min() <= 0 or pts[:, 1].max() - pts[:, 1].min() <= 0:
            broken("polygon has zero width or height")
            continue
        key = (c, tuple(values[1:]))
        if key in seen:
            n_dup += 1
            msgs.append(f"{where}: removed duplicate of line {seen[key]}")
            continue
        seen[key] = lineno
        cls.append(c)
        segs.append(pts)
    return np.array(cls, np.int64), segs, msgs, n_broken, n_dup


def verify_image(im_file) -> tuple[tuple[int, int] | None, str | None, str | None]:
    """Decode an image to check it. Returns ``(shape (h, w) or None, error or None, warning or None)``."""
    cv2 = require_cv2("reading a dataset")
    try:
        buf = np.fromfile(str(im_file), dtype=np.uint8)
    except OSError as e:
        return None, f"{im_file}: unreadable image ({e.strerror or e})", None
    if buf.size == 0:
        return None, f"{im_file}: empty image file", None
    try:
        im = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        im = None
    if im is None:
        return None, f"{im_file}: corrupt image (cannot be decoded)", None
    h, w = im.shape[:2]
    if h < MIN_IMAGE_SIDE or w < MIN_IMAGE_SIDE:
        return None, f"{im_file}: image {w}x{h} is smaller than {MIN_IMAGE_SIDE} px", None
    warn = None
    if Path(im_file).suffix.lower() in (".jpg", ".jpeg") and bytes(buf[-2:]) != b"\xff\xd9":
        warn = f"{im_file}: truncated JPEG (kept, decoded as far as possible)"
    return (int(h), int(w)), None, warn


def _read_label_file(label_file: Path):
    """Return (text or None, error message or None, exists)."""
    try:
        return label_file.read_text(encoding="utf-8"), None, True
    except FileNotFoundError:
        return None, None, False
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{label_file}: unreadable label file ({e})", True


def scan_labels(im_files: Sequence, nc: int, workers: int | None = None) -> tuple[list[ImageLabels], LabelSummary]:
    """Verify every image and parse its label file (no cache). Returns ``(labels, summary)``."""
    im_files = [str(f) for f in im_files]
    summary = LabelSummary()
    parsed: list[tuple[tuple[np.ndarray, list[np.ndarray], list[str], int, int] | None, str | None, bool]] = []
    for f in im_files:  # labels first: a class-id error should stop before decoding any image
        lf = img2label_path(f)
        text, err, exists = _read_label_file(lf)
        if err:
            parsed.append((None, err, exists))
            continue
        if not exists:
            parsed.append(((np.zeros(0, np.int64), [], [], 0, 0), None, False))
            continue
        parsed.append((parse_label_text(text, lf, nc), None, True))
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:  # cv2 decodes without the GIL
        checks = list(pool.map(verify_image, im_files))
    labels: list[ImageLabels] = []
    for f, (res, label_err, exists), (shape, img_err, img_warn) in zip(im_files, parsed, checks):
        # res is None exactly when the label file is unreadable, shape exactly when the image is
        if img_err or label_err or res is None or shape is None:
            summary.corrupt_images += 1
            summary.messages.append(f"{img_err or label_err}; image skipped")
            continue
        if img_warn:
            summary.messages.append(img_warn)
        cls, segs, msgs, nb, nd = res
        summary.messages += msgs
        summary.broken_rows += nb
        summary.duplicate_rows += nd
        if not exists:
            summary.missing_labels += 1
        elif not len(cls):
            summary.empty_labels += 1
        summary.instances += len(cls)
        labels.append(ImageLabels(f, shape, cls, segs))
    summary.images = len(labels)
    return labels, summary


def log_summary(summary: LabelSummary, prefix: str = "labels") -> None:
    """Log the summary line and (up to MAX_SHOWN_MESSAGES) warnings."""
    src = " (from cache)" if summary.from_cache else ""
    LOGGER.info("%s%s: %s", prefix, src, summary)
    for m in summary.messages[:MAX_SHOWN_MESSAGES]:
        LOGGER.warning("%s", m)
    if len(summary.messages) > MAX_SHOWN_MESSAGES:
        LOGGER.warning("... and %d more label warnings", len(summary.messages) - MAX_SHOWN_MESSAGES)


def load_labels(
    im_files: Sequence, nc: int, cache: bool = True, prefix: str = "labels"
) -> tuple[list[ImageLabels], LabelSummary]:
    """Labels for ``im_files``, from the cache when it is still valid. Returns ``(labels, summary)``.

    Raises DatasetError if no image is usable or a class id is out of range.
    """
    im_files = [str(f) for f in im_files]
    if not im_files:
        raise DatasetError("no images found")
    cache_file = cache_path_for(im_files) if cache else None
    key = dataset_hash(im_files, nc) if cache else None
    hit = load_cache(cache_file, key) if cache_file is not None and key is not None else None
    if hit is not None:
        labels, summary = hit
        summary.from_cache = True
    else:
        labels, summary = scan_labels(im_files, nc)
        if cache_file is not None and key is not None:
            save_cache(cache_file, key, labels, summary)
    summary.cache_file = cache_file
    log_summary(summary, prefix)
    if not labels:
        raise DatasetError(
            f"no usable images among {len(im_files)} (first: {im_files[0]}); {summary.corrupt_images} corrupt"
        )
    return labels, summary
