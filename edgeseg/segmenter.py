"""Segmenter: the end-to-end pipeline from an image to :class:`~edgeseg.detections.Detections`.

image -> normalise (image_io) -> letterbox to the backend's input -> backend.infer -> decode ->
NMS (unless the output layout is end-to-end) -> boxes to original pixels -> masks -> Detections
(with per-stage timings in ms).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import NDArray

from .backends import InputSpec, select_backend
from .detections import Detections, class_id_of
from .errors import ModelOutputError
from .image_io import ImageLike, load_image, to_bgr
from .metadata import ModelMetadata
from .ops.letterbox import LetterboxInfo, letterbox, scale_boxes
from .ops.masks import MaskSet, masks_input, masks_native
from .ops.nms import nms

if TYPE_CHECKING:
    from .pipeline import SourceSpec, StreamResult
    from .sources import LiveOptions

_NONFINITE_POLICIES = ("raise", "drop")


class Segmenter:
    """Instance segmentation with a YOLOv8-seg / YOLO11-seg model.

    Args:
        model: path to the model file (``.onnx``; more formats with more backends).
        backend: backend name, or ``None``/``"auto"`` to choose from the file name.
        conf: minimum class score in [0, 1].
        iou: NMS IoU threshold in [0, 1].
        max_det: most detections kept per image.
        imgsz: input size for models with a dynamic input (int or (h, w)).
        classes: keep only these classes (ids or names).
        retina_masks: masks computed at original-image resolution (True) or at input resolution and
            resized (False: faster, coarser edges).
        agnostic_nms: NMS across classes instead of per class.
        on_nonfinite: ``"raise"`` (default) raises :class:`ModelOutputError` when the model outputs
            NaN/inf; ``"drop"`` silently ignores the affected candidates.
        **backend_options: passed to the backend (e.g. ``providers``, ``intra_op_threads``).

    Call it with an image (BGR array or path) to get :class:`Detections`, or with a list of images (or a
    [B, H, W, C] array) to get a list.
    """

    def __init__(
        self,
        model: str | PathLike[str],
        backend: str | None = None,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        imgsz: int | Sequence[int] | None = None,
        classes: int | str | Sequence[int | str] | None = None,
        retina_masks: bool = True,
        agnostic_nms: bool = False,
        on_nonfinite: str = "raise",
        **backend_options: Any,
    ) -> None:
        self._args: dict[str, Any] = {
            "model": model,
            "backend": backend,
            "conf": conf,
            "iou": iou,
            "max_det": max_det,
            "imgsz": imgsz,
            "classes": classes,
            "retina_masks": retina_masks,
            "agnostic_nms": agnostic_nms,
            "on_nonfinite": on_nonfinite,
            **backend_options,
        }
        self.conf = _unit_interval("conf", conf)
        self.iou = _unit_interval("iou", iou)
        if isinstance(max_det, bool) or not isinstance(max_det, (int, np.integer)) or max_det < 1:
            raise ValueError(f"max_det must be a positive int, got {max_det!r}")
        self.max_det = int(max_det)
        if on_nonfinite not in _NONFINITE_POLICIES:
            raise ValueError(f"on_nonfinite must be one of {_NONFINITE_POLICIES}, got {on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        self.retina_masks = bool(retina_masks)
        self.agnostic_nms = bool(agnostic_nms)

        backend_cls = select_backend(model, backend)
        self.backend = backend_cls(model, imgsz=imgsz, **backend_options)
        self.classes = self._class_ids(classes)

    # ---- public properties ---------------------------------------------------------------------

    @property
    def metadata(self) -> ModelMetadata:
        """The model's :class:`~edgeseg.metadata.ModelMetadata`."""
        return self.backend.metadata

    @property
    def names(self) -> dict[int, str]:
        """Class id -> name."""
        return self.backend.metadata.names

    @property
    def input_spec(self) -> InputSpec:
        return self.backend.input_spec

    # ---- running -------------------------------------------------------------------------------

    @overload
    def __call__(self, images: str | PathLike[str]) -> Detections: ...
    @overload
    def __call__(self, images: list[ImageLike] | tuple[ImageLike, ...]) -> list[Detections]: ...
    @overload
    def __call__(self, images: NDArray[Any]) -> Detections | list[Detections]: ...  # a list for [B, H, W, C]

    def __call__(self, images: ImageLike | list[ImageLike] | tuple[ImageLike, ...]) -> Detections | list[Detections]:
        if isinstance(images, (list, tuple)):
            return [self.predict(image) for image in images]
        if isinstance(images, np.ndarray) and images.ndim == 4:
            return [self.predict(image) for image in images]
        return self.predict(images)

    def replicate(self, **overrides: Any) -> Segmenter:
        """A second segmenter with the same model and options (``overrides`` replace some, e.g.
        ``intra_op_threads=1``) and its own backend instance, for another thread: backends keep per-model
        state such as inference requests. Without overrides, a backend that can share its loaded model with
        another thread does (:meth:`Backend.worker`: OpenVINO's compiled model with a request of its own)."""
        if not overrides:
            shared = self.backend.worker()
            if shared is not None:
                clone = copy.copy(self)
                clone.backend = shared
                return clone
        return Segmenter(**{**self._args, **overrides})

    def stream(
        self,
        sources: SourceSpec | Sequence[SourceSpec],
        *,
        workers: int | None = None,
        live_buffer: int = 1,
        read_timeout: float | None = None,
        live: LiveOptions | None = None,
    ) -> Iterator[StreamResult]:
        """Results for the frames of ``sources`` (one or a list: files, folders, cameras, URLs, ``"demo"``),
        in frame order per source, with capture and inference overlapped; see :class:`edgeseg.pipeline.Pipeline`.
        Leaving the loop stops every thread and releases every source."""
        from .pipeline import Pipeline

        with Pipeline(
            self, sources, workers=workers, live_buffer=live_buffer, read_timeout=read_timeout, live=live
        ) as run:
            yield from run

    def warmup(self, runs: int = 1) -> None:
        """Run the model on a blank input ``runs`` times (first runs allocate and compile)."""
        spec = self.backend.input_spec
        blob = np.zeros(spec.blob_shape, dtype=np.dtype(spec.dtype))
        for _ in range(int(runs)):
            self.backend.infer(blob)

    def preprocess(self, image: NDArray[Any]) -> tuple[NDArray[Any], LetterboxInfo]:
        """The model input for an image array (BGR, gray or BGRA), letterboxed as the model expects, and
        the :class:`~edgeseg.ops.letterbox.LetterboxInfo` that maps its boxes back to the image."""
        spec = self.backend.input_spec
        return letterbox(
            to_bgr(image),
            spec.shape,
            scaleup=True,
            auto=False,
            stride=self.metadata.stride,
            layout=spec.layout,
            dtype=spec.dtype,
            bgr_to_rgb=True,
        )

    def predict(self, image: ImageLike) -> Detections:
        """Detections in one image (a BGR array or a path)."""
        if not isinstance(image, np.ndarray):
            image = load_image(image)  # reading a file is not counted as preprocessing
        t0 = time.perf_counter()
        blob, info = self.preprocess(image)
        t1 = time.perf_counter()
        outputs = self.backend.infer(blob)
        t2 = time.perf_counter()
        detections = self._postprocess(outputs, info, image.shape[:2])
        t3 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return dataclasses.replace(detections, timings=timings)

    def _postprocess(
        self, outputs: Sequence[NDArray[Any]], info: LetterboxInfo, image_shape: tuple[int, int]
    ) -> Detections:
        layout = self.backend.output_layout
        candidates, protos = layout.decode(outputs, conf=self.conf, classes=self.classes)
        if candidates.nonfinite and self.on_nonfinite == "raise":
            raise ModelOutputError(
                f"the model produced {candidates.nonfinite} prediction(s) with NaN or infinity "
                "(broken export or unsupported precision?); pass on_nonfinite='drop' to ignore them"
            )
        if layout.needs_nms:
            keep = nms(
                candidates.boxes,
                candidates.scores,
                candidates.class_ids,
                iou=self.iou,
                agnostic=self.agnostic_nms,
                max_det=self.max_det,
            )
            candidates = candidates.select(keep)
        else:  # an end-to-end head: its candidates are final detections, highest score first
            candidates = candidates.select(slice(0, self.max_det))
        if len(candidates) == 0:
            return Detections.empty(self.names, image_shape, masks=MaskSet.empty(image_shape))
        boxes = scale_boxes(candidates.boxes, info)
        if self.retina_masks:
            masks = masks_native(protos, candidates.coefs, boxes, info, layout=layout.protos_layout)
        else:
            masks = masks_input(protos, candidates.coefs, candidates.boxes, info, layout=layout.protos_layout)
        if masks.nonfinite and self.on_nonfinite == "raise":
            raise ModelOutputError(
                f"the model's mask prototypes or coefficients hold {masks.nonfinite} NaN/infinite value(s); "
                "pass on_nonfinite='drop' to ignore them"
            )
        detections = Detections(
            xyxy=boxes,
            confidence=candidates.scores,
            class_id=candidates.class_ids,
            names=self.names,
            masks=masks,
            image_shape=image_shape,
        )
        has_mask = masks.areas() > 0
        return detections if has_mask.all() else detections[has_mask]

    def _class_ids(self, classes: int | str | Sequence[int | str] | None) -> list[int] | None:
        if classes is None:
            return None
        if isinstance(classes, (int, str, np.integer)):
            classes = [classes]
        ids = []
        for cls in classes:
            try:
                cid = class_id_of(self.names, cls)
            except ValueError:
                raise ValueError(
                    f"unknown class name {cls!r}; the model's classes are "
                    f"{', '.join(list(self.names.values())[:10])}..."
                ) from None
            if not 0 <= cid < len(self.names):
                raise ValueError(f"class id {cid} out of range: the model has {len(self.names)} classes")
            ids.append(cid)
        return sorted(set(ids))

    def __repr__(self) -> str:
        spec = self.backend.input_spec
        return (
            f"Segmenter(backend={self.backend.name!r}, input={spec.shape[0]}x{spec.shape[1]}, "
            f"classes={len(self.names)}, conf={self.conf}, iou={self.iou}"
            + (", agnostic_nms=True)" if self.agnostic_nms else ")")
        )


def _unit_interval(name: str, value: float) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value
