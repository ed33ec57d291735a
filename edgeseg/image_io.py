"""Reading images and normalising arrays to the 8-bit BGR HxWx3 images the pipeline expects.

Files are read with ``np.fromfile`` + ``cv2.imdecode`` so that non-ASCII paths work on every platform.
They are decoded with ``IMREAD_ANYDEPTH | IMREAD_ANYCOLOR``: 16-bit and grayscale images keep their
depth and channels (then normalised here), and JPEG EXIF orientation is applied as photo viewers do
(``IMREAD_UNCHANGED`` would ignore it and give phone photos on their side).

OpenCV is needed only to decode files: arrays (a camera's, an application's) are normalised without it, so
:func:`to_bgr` and :func:`load_image` of an array work with no cv2 installed (and never import it: a cv2 that
the process has already imported is used for speed).
"""

from __future__ import annotations

import sys
from os import PathLike, fspath
from pathlib import Path
from types import ModuleType
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

from .errors import ImageReadError
from .opencv import require_cv2

ImageLike = Union[NDArray[Any], str, PathLike[str]]

IMAGE_SUFFIXES = frozenset(
    {
        ".bmp",
        ".dib",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jp2",
        ".png",
        ".webp",
        ".tif",
        ".tiff",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pxm",
        ".pnm",
        ".sr",
        ".ras",
        ".exr",
        ".hdr",
        ".pic",
        ".avif",
    }
)


def read_image(path: str | PathLike[str]) -> NDArray[np.uint8]:
    """Read an image file into a contiguous uint8 BGR array of shape (H, W, 3)."""
    path = Path(fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"{path} is a directory, not an image file")
    cv2 = require_cv2(f"reading the image {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"cannot read {path}: {exc}") from exc
    if data.size == 0:
        raise ImageReadError(f"{path} is empty (0 bytes)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as exc:
        raise ImageReadError(f"{path} cannot be decoded as an image: {exc}") from exc
    if image is None or image.size == 0:
        raise ImageReadError(f"{path} is not a readable image (corrupt, truncated or unsupported format)")
    return to_bgr(image, source=str(path))


def load_image(image: ImageLike) -> NDArray[np.uint8]:
    """A path or an array -> uint8 BGR (H, W, 3). Arrays are normalised with :func:`to_bgr`."""
    if isinstance(image, np.ndarray):
        return to_bgr(image)
    if isinstance(image, (str, PathLike)):
        return read_image(image)
    raise TypeError(f"expected an image path or a numpy array, got {type(image).__name__}")


def to_bgr(image: NDArray[Any], source: str = "image") -> NDArray[np.uint8]:
    """Normalise an array to contiguous uint8 BGR (H, W, 3).

    Accepts gray (H, W) or (H, W, 1), BGR (H, W, 3) and BGRA (H, W, 4) images in uint8, uint16 (the
    top 8 bits are kept) or float in [0, 1]. Anything else raises ``ValueError`` saying why; the input
    array is never modified. Three channels are taken as BGR as they are. No cv2 needed.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise ValueError(
            f"{source}: expected an image of shape (H, W) or (H, W, C), got an array of shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{source}: image is empty (shape {image.shape})")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 3, 4):
        raise ValueError(
            f"{source}: expected 1 (gray), 3 (BGR) or 4 (BGRA) channels, got {channels} "
            f"(shape {image.shape}); channel-first (C, H, W) arrays must be transposed to (H, W, C)"
        )
    image = _to_uint8(image, source)
    if channels == 3:
        return np.ascontiguousarray(image)
    if channels == 1:
        image = image.reshape(image.shape[:2])
    cv2 = _loaded_cv2()
    if cv2 is not None:  # several times faster than numpy's strided copies
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if channels == 1 else cv2.COLOR_BGRA2BGR))
    bgr: NDArray[np.uint8] = np.empty((*image.shape[:2], 3), dtype=np.uint8)
    for c in range(3):  # the same pixels: gray copied into each channel, or alpha dropped
        bgr[..., c] = image if channels == 1 else image[..., c]
    return bgr


def _loaded_cv2() -> ModuleType | None:
    """cv2 if the process has already imported it, else None: converting an array never imports OpenCV."""
    cv2 = sys.modules.get("cv2")
    return cv2 if isinstance(cv2, ModuleType) and hasattr(cv2, "cvtColor") else None


def _to_uint8(image: NDArray[Any], source: str) -> NDArray[np.uint8]:
    dtype = image.dtype
    if dtype == np.uint8:
        return image
    if dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if dtype.kind == "f":
        if not np.isfinite(image).all():
            raise ValueError(f"{source}: float image contains NaN or infinity")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{source}: float images must hold values in [0, 1], got range [{lo:g}, {hi:g}]; "
                "convert 0..255 floats with image.astype(np.uint8)"
            )
        return np.rint(image * 255.0).astype(np.uint8)
    raise ValueError(f"{source}: unsupported image dtype {dtype}; expected uint8, uint16 or float in [0, 1]")
