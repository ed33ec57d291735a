"""Detections: the result of segmenting one image.

A small validated container in the spirit of supervision's ``Detections``: parallel arrays (one row per
instance) plus the instance masks, sliceable like an array. Drawing lives in :mod:`edgeseg.annotate`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .ops.selection import row_indices

if TYPE_CHECKING:  # pragma: no cover
    from .ops.masks import MaskSet

Names = Union[Mapping[int, str], Sequence[str]]


@dataclass(frozen=True)
class Detections:
    """Instances found in one image, in original-image pixels.

    Attributes:
        xyxy: float32 [n, 4] boxes (x1, y1, x2, y2).
        confidence: float32 [n] scores.
        class_id: int32 [n] class ids.
        names: class id -> name (the model's dict or list; shared, not copied).
        masks: a :class:`edgeseg.ops.masks.MaskSet` with one mask per row, or ``None``.
        image_shape: (height, width) of the image the detections refer to, when known.
        timings: milliseconds spent in ``preprocess``, ``inference`` and ``postprocess``.
        tracker_id: int64 [n] track ids (>= 1) given by :class:`edgeseg.tracking.Tracker`, or ``None`` when the
            detections were not tracked.
    """

    xyxy: NDArray[np.float32]
    confidence: NDArray[np.float32]
    class_id: NDArray[np.int32]
    names: Names = field(default_factory=dict)
    masks: MaskSet | None = None
    image_shape: tuple[int, int] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    tracker_id: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        xyxy = np.ascontiguousarray(xyxy)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape [n, 4], got {xyxy.shape}")
        n = xyxy.shape[0]
        if not np.isfinite(xyxy).all():
            raise ValueError("xyxy contains NaN or infinity")
        confidence = np.ascontiguousarray(np.asarray(self.confidence, dtype=np.float32).reshape(-1))
        class_id = _as_class_ids(self.class_id)
        if confidence.shape != (n,):
            raise ValueError(f"confidence must have shape [{n}], got {confidence.shape}")
        if class_id.shape != (n,):
            raise ValueError(f"class_id must have shape [{n}], got {class_id.shape}")
        tracker_id = None
        if self.tracker_id is not None:
            tracker_id = _as_tracker_ids(self.tracker_id)
            if tracker_id.shape != (n,):
                raise ValueError(f"tracker_id must have shape [{n}], got {tracker_id.shape}")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"masks hold {len(self.masks)} instances but there are {n} boxes")
        if not isinstance(self.names, (Mapping, list, tuple)):
            raise TypeError(f"names must be a dict or list, got {type(self.names).__name__}")
        image_shape: tuple[int, ...] | None = self.image_shape
        if image_shape is None and self.masks is not None:
            image_shape = tuple(self.masks.image_shape)
        if image_shape is not None:
            image_shape = tuple(int(v) for v in image_shape)
            if len(image_shape) != 2:
                raise ValueError(f"image_shape must be (height, width), got {self.image_shape!r}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "image_shape", image_shape)
        object.__setattr__(self, "timings", dict(self.timings))
        object.__setattr__(self, "tracker_id", tracker_id)

    @classmethod
    def empty(
        cls,
        names: Names | None = None,
        image_shape: tuple[int, int] | None = None,
        masks: MaskSet | None = None,
        timings: dict[str, float] | None = None,
    ) -> Detections:
        """No detections (``masks`` may be an empty MaskSet)."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int32),
            names=names if names is not None else {},
            masks=masks,
            image_shape=image_shape,
            timings=timings or {},
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __iter__(self) -> Iterator[Detections]:
        """Iterate one-row :class:`Detections`."""
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, key: ArrayLike | slice) -> Detections:
        """Select rows with an int, slice, boolean mask or index array; always returns Detections."""
        index = row_indices(key, len(self), "detections")
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            names=self.names,
            masks=self.masks.select(index) if self.masks is not None else None,
            image_shape=self.image_shape,
            timings=self.timings,
            tracker_id=self.tracker_id[index] if self.tracker_id is not None else None,
        )

    def with_tracker_id(self, tracker_id: ArrayLike, rows: ArrayLike | None = None) -> Detections:
        """These detections (or the rows ``rows`` selects, in that order) with ``tracker_id`` set.

        For trackers, once per frame: the arrays of a checked :class:`Detections` are not checked again, only
        the ids (one integer per selected row).
        """
        index = None if rows is None else row_indices(rows, len(self), "detections")
        ids = _as_tracker_ids(tracker_id)
        n = len(self) if index is None else len(index)
        if ids.shape != (n,):
            raise ValueError(f"tracker_id must have shape [{n}], got {ids.shape}")
        out = object.__new__(Detections)
        fields = dict(self.__dict__, timings=dict(self.timings), tracker_id=ids)
        if index is not None:
            fields["xyxy"] = self.xyxy[index]
            fields["confidence"] = self.confidence[index]
            fields["class_id"] = self.class_id[index]
            fields["masks"] = self.masks.select(index) if self.masks is not None else None
        out.__dict__.update(fields)  # frozen: no setattr; the fields are those of a checked Detections
        return out

    # ---- convenience -------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        """The class name of each row ('<id>' for ids the names do not cover)."""
        return [_name_of(self.names, int(c)) for c in self.class_id]

    @property
    def box_area(self) -> NDArray[np.float32]:
        """float32 [n] box areas in pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        area: NDArray[np.float32] = wh[:, 0] * wh[:, 1]
        return area

    @property
    def mask_area(self) -> NDArray[np.int64]:
        """int64 [n] mask pixel counts (requires masks)."""
        if self.masks is None:
            raise ValueError("these detections have no masks")
        return np.asarray(self.masks.areas(), dtype=np.int64)

    def with_class(self, *classes: int | str) -> Detections:
        """Keep rows whose class id or class name is one of ``classes``."""
        ids = {class_id_of(self.names, c) for c in classes}
        return self[np.isin(self.class_id, sorted(ids))]

    def with_min_confidence(self, threshold: float) -> Detections:
        """Keep rows with confidence >= threshold."""
        threshold = float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        return self[self.confidence >= threshold]

    def polygons(self, strategy: str = "largest") -> list[list[NDArray[np.float32]]]:
        """Mask outlines in original pixels: per row, a list of float32 [k, 2] xy arrays."""
        if self.masks is None:
            raise ValueError("these detections have no masks")
        from .ops.polygons import polygons as _polygons

        return _polygons(self.masks, strategy=strategy)

    def to_rows(self, polygons: str | None = "largest", decimals: int = 1) -> list[dict[str, Any]]:
        """JSON-friendly rows: class_id, name, confidence, box [x1, y1, x2, y2] and (optionally) polygons.

        ``polygons`` is a strategy for :meth:`polygons` ("largest" or "all") or ``None`` to leave them out.
        """
        polys = self.polygons(polygons) if (polygons and self.masks is not None) else None
        rows: list[dict[str, Any]] = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "class_id": int(self.class_id[i]),
                "name": _name_of(self.names, int(self.class_id[i])),
                "confidence": round(float(self.confidence[i]), 4),
                "box": [round(float(v), decimals) for v in self.xyxy[i]],
            }
            if self.tracker_id is not None:
                row["tracker_id"] = int(self.tracker_id[i])
            if polys is not None:
                row["polygons"] = [np.round(p.astype(np.float64), decimals).tolist() for p in polys[i]]
            rows.append(row)
        return rows

    def to_dict(self, polygons: str | None = "largest") -> dict[str, Any]:
        """JSON-friendly dict: image_shape, timings (ms) and detections rows."""
        return {
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "timings": {k: round(float(v), 3) for k, v in self.timings.items()},
            "detections": self.to_rows(polygons=polygons),
        }

    def summary(self) -> str:
        """'2 person, 1 bus' style count summary ('no detections' when empty)."""
        if not len(self):
            return "no detections"
        ids, counts = np.unique(self.class_id, return_counts=True)
        return ", ".join(f"{c} {_name_of(self.names, int(i))}" for i, c in zip(ids, counts))


def _as_class_ids(values: ArrayLike) -> NDArray[np.int32]:
    arr = np.asarray(values).reshape(-1)
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            pass
        else:
            raise ValueError(f"class_id must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr.astype(np.int32))


def _as_tracker_ids(values: ArrayLike) -> NDArray[np.int64]:
    if isinstance(values, np.ndarray) and values.dtype == np.int64 and values.ndim == 1 and values.flags.c_contiguous:
        return values
    arr = np.asarray(values).reshape(-1)
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"tracker_id must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr.astype(np.int64))


def _name_of(names: Names, class_id: int) -> str:
    try:
        return str(names[class_id])
    except (KeyError, IndexError, TypeError):
        return str(class_id)


def class_id_of(names: Names, cls: int | str) -> int:
    if isinstance(cls, (int, np.integer)) and not isinstance(cls, bool):
        return int(cls)
    if isinstance(cls, str):
        items = names.items() if isinstance(names, Mapping) else enumerate(names)
        for cid, name in items:
            if name == cls:
                return int(cid)
        raise ValueError(f"unknown class name {cls!r}")
    raise TypeError(f"classes must be ids or names, got {cls!r}")
