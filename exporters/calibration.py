"""Calibration images for post-training quantisation (OpenVINO/NNCF int8, TFLite full-integer, ...).

Two steps, shared by every int8 exporter so that they calibrate on the same images, prepared the same
way:

    paths = calibration_images("coco128-seg.yaml", fraction=0.5, max_images=300)  # list[Path]
    for blob in calibration_blobs(paths, 640):  # float32 [1, 3, 640, 640] RGB 0..1
        ...

``calibration_images`` picks the files deterministically: the split's images (or a folder's images,
recursively, or a .txt list) sorted by path, then ``indices`` (positions in that sorted list), then the
first ``ceil(fraction * n)`` of them, then at most ``max_images``. Running it twice gives the same
list; it never shuffles.

``calibration_blobs`` letterboxes each image with :func:`edgeseg.ops.letterbox` exactly as
:class:`edgeseg.segmenter.Segmenter` does at inference (upscaling allowed, centred padding of 114,
BGR -> RGB, no ``auto`` stride padding), so the calibration statistics are those of real inputs.

torch-free and light: numpy, OpenCV (image reading) and, for dataset yamls, PyYAML.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Union

import numpy as np

from edgeseg.metadata import parse_imgsz

from .common import ExportError

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "IMG_SUFFIXES",
    "CalibrationError",
    "calibration_blobs",
    "calibration_images",
    "check_fraction",
]

DEFAULT_MAX_IMAGES = 300
IMG_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_SPLITS = ("train", "val", "test")

PathLike = Union[str, "os.PathLike[str]"]


class CalibrationError(ExportError):
    """The calibration images cannot be found or read, or the selection options are invalid."""


def calibration_images(
    data,
    *,
    fraction: float = 1.0,
    max_images: int | None = DEFAULT_MAX_IMAGES,
    split: str = "train",
    indices: slice | Iterable[int] | None = None,
) -> list[Path]:
    """The calibration image files, in a deterministic (sorted) order.

    Args:
        data: a dataset yaml (``.yaml``/``.yml``: the images of ``split``), an edgeseg
            ``DatasetConfig``, a folder of images (searched recursively) or a ``.txt`` list of images.
        fraction: use the first ``ceil(fraction * n)`` images (0 < fraction <= 1), as Ultralytics'
            ``fraction`` does for training data.
        max_images: at most this many (``None``: no limit). Default 300.
        split: the dataset split for a yaml: ``"train"`` (default: calibrate on training data, never
            on the images accuracy is measured on) or ``"val"``/``"test"``.
        indices: positions in the sorted list to keep, in the given order (e.g. ``range(64)`` for
            "images 0-63"); applied before ``fraction`` and ``max_images``.

    Raises:
        CalibrationError: nothing found, a bad option, an index out of range, an unreadable yaml.
    """
    fraction = check_fraction(fraction)
    max_images = _check_max_images(max_images)
    if split not in _SPLITS:
        raise CalibrationError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    files, where = _list_files(data, split)
    if not files:
        raise CalibrationError(f"no calibration images found in {where} (looked for {', '.join(IMG_SUFFIXES)})")
    if indices is not None:
        files = _select(files, indices, where)
    n = max(1, math.ceil(fraction * len(files) - 1e-9))
    files = files[:n]
    if max_images is not None:
        files = files[:max_images]
    return files


def calibration_blobs(
    paths: Sequence[PathLike], imgsz, layout: str = "nchw", dtype: str = "float32"
) -> Iterator[np.ndarray]:
    """Yield one letterboxed input blob per image, exactly as inference prepares it.

    ``imgsz`` is an int or (h, w); ``layout`` "nchw" -> [1, 3, h, w], "nhwc" -> [1, h, w, 3];
    ``dtype`` "float32" (RGB 0..1), "uint8" (0..255) or "int8" (pixel - 128). Each blob is a fresh
    array (safe to keep). Raises :class:`CalibrationError` naming an image that cannot be read.
    """
    from edgeseg.errors import ImageReadError
    from edgeseg.image_io import read_image
    from edgeseg.ops.letterbox import letterbox

    size = parse_imgsz(imgsz, strict=True, error=CalibrationError)
    if layout not in ("nchw", "nhwc"):
        raise CalibrationError(f"layout must be 'nchw' or 'nhwc', got {layout!r}")
    if dtype not in ("float32", "uint8", "int8"):
        raise CalibrationError(f"dtype must be 'float32', 'uint8' or 'int8', got {dtype!r}")
    for path in paths:
        try:
            image = read_image(path)
        except (ImageReadError, FileNotFoundError, OSError) as exc:
            raise CalibrationError(f"cannot read calibration image {path}: {exc}") from exc
        blob, _ = letterbox(
            image, size, scaleup=True, auto=False, stride=32, layout=layout, dtype=dtype, bgr_to_rgb=True
        )
        yield np.ascontiguousarray(blob)


# ---- helpers -------------------------------------------------------------------------------------


def check_fraction(fraction) -> float:
    if isinstance(fraction, bool):
        raise CalibrationError(f"fraction must be a number in (0, 1], got {fraction!r}")
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise CalibrationError(f"fraction must be a number in (0, 1], got {fraction!r}") from None
    if not 0.0 < value <= 1.0:
        raise CalibrationError(f"fraction must be in (0, 1], got {fraction!r}")
    return value


def _check_max_images(max_images) -> int | None:
    if max_images is None:
        return None
    if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)) or max_images < 1:
        raise CalibrationError(f"max_images must be a positive integer or None, got {max_images!r}")
    return int(max_images)


def _select(files: list[Path], indices: slice | Iterable[int], where: str) -> list[Path]:
    if isinstance(indices, slice):  # e.g. slice(0, 64): images 0-63 (clipped to what there is, as lists are)
        indices = range(*indices.indices(len(files)))
    out = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise CalibrationError(f"indices must be integers, got {i!r}")
        if not 0 <= int(i) < len(files):
            raise CalibrationError(f"calibration index {int(i)} out of range: {where} has {len(files)} images")
        out.append(files[int(i)])
    if not out:
        raise CalibrationError("indices selected no calibration images")
    return out


def _list_files(data, split: str) -> tuple[list[Path], str]:
    from edgeseg.data.dataset_yaml import DatasetConfig, list_image_files, load_dataset_yaml
    from edgeseg.data.errors import DatasetError

    if isinstance(data, DatasetConfig):
        sources, where = data.split(split), f"the '{split}' split of {data.yaml_file or 'the dataset'}"
    elif isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        if not path.exists():
            raise CalibrationError(f"calibration data not found: {path} (expected a dataset yaml or an image folder)")
        if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
            try:
                cfg = load_dataset_yaml(path)
            except DatasetError as exc:
                raise CalibrationError(f"cannot use {path} for calibration: {exc}") from exc
            except ImportError as exc:
                raise CalibrationError(f"reading the dataset yaml {path} needs PyYAML (pip install pyyaml)") from exc
            sources, where = cfg.split(split), f"the '{split}' split of {path}"
            if not sources:
                raise CalibrationError(f"{path} defines no '{split}' split; pass split='train' or 'val'")
        elif path.is_dir() or (path.is_file() and path.suffix.lower() == ".txt"):
            sources, where = [path], str(path)
        else:
            raise CalibrationError(
                f"calibration data must be a dataset yaml, an image folder or a .txt image list, got {path}"
            )
    else:
        raise CalibrationError(
            f"calibration data must be a path (dataset yaml or image folder), got {type(data).__name__}"
        )
    try:
        files = list_image_files(sources)
    except DatasetError as exc:
        raise CalibrationError(f"cannot list calibration images in {where}: {exc}") from exc
    return sorted(files, key=str), where
