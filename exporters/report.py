"""Export accuracy report: how closely an exported model reproduces its fp32 reference, and how fast it is.

    from edgeseg.exporters.report import build_report, write_report, format_report
    report = build_report("yolov8n-seg_int8_openvino_model", "yolov8n-seg.pt",
                          images=["bus.jpg", "zidane.jpg"], imgsz=640,
                          data="coco128-seg.yaml", data_indices=slice(64, 128))
    print(format_report(report)); write_report(report, beside="yolov8n-seg_int8_openvino_model")

Both models run through edgeseg's own runtime (:class:`edgeseg.segmenter.Segmenter` and its backend),
on the same images:

* **output error**: each backend's raw ``infer`` on the same letterboxed image (each in its own input
  layout/dtype), outputs brought to one layout (predictions [C, N] with boxes in input pixels,
  prototypes [nm, h, w]); max and mean absolute difference per output, and for the predictions split
  into boxes, class scores and mask coefficients. Only when both inputs have the same size.
* **agreement mAP**: box and mask mAP (:class:`edgeseg.metrics.SegmentMetrics`, Ultralytics matching)
  of the export's detections (conf 0.001, as val) against the reference's detections at conf 0.25 used
  as ground truth, in original-image pixels (masks compared at 1/4 of the original resolution). The
  reference's own detections scored the same way give the ceiling (99.5 with Ultralytics' AP
  integration, not 100); ceiling - mAP is the agreement loss in points.
* **val mAP** (with ``data``): the true box/mask mAP of both on a dataset (optionally an image subset
  such as coco128 images 64-127) via :func:`edgeseg.val.validate`, the same square-letterbox protocol
  for both (``rect=False``), and the drop in points.
* size on disk (all files of the model), load time, median latency per stage (pre, inference, post).

A mask mAP drop over ``max_drop`` points (default 1) adds a loud multi-line WARNING (printed) and an
entry in ``report["warnings"]``. The drop is the true val drop when ``data`` is given, otherwise the
agreement loss (which is stricter: it also counts small mask-edge changes as misses).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg import formats
from edgeseg.benchmark import time_segmenter
from edgeseg.cli.options import parse_indices
from edgeseg.fileio import atomic_write_text
from edgeseg.formats import guess_precision

__all__ = [
    "REPORT_NAME",
    "build_report",
    "default_report_images",
    "format_report",
    "guess_precision",
    "model_files",
    "model_size",
    "report_export",
    "report_path",
    "write_report",
]

REPORT_NAME = "export_report.json"
REFERENCE_CONF = 0.25  # reference detections at the deployment threshold are the pseudo ground truth
EXPORT_CONF = 0.001  # the export's detections at val's threshold (so AP integrates the full PR curve)
MASK_DOWNSAMPLE = 4  # agreement masks compared at 1/4 of the original resolution (as val's 1/4-res masks)
MAX_DROP_POINTS = 1.0


# ---- model files -----------------------------------------------------------------------------------


def model_files(path: str | PathLike) -> list[Path]:
    """The files that make up a model: a folder's files (recursive, the report itself not counted), or the
    file plus its sidecars (OpenVINO ``.xml`` + ``.bin``, ncnn ``.param`` + ``.bin``)."""
    return formats.model_files(path, skip=(REPORT_NAME,))


def model_size(path: str | PathLike) -> int:
    """Bytes on disk of all the model's files (see :func:`model_files`)."""
    return formats.model_size(path, skip=(REPORT_NAME,))


def report_path(model: str | PathLike) -> Path:
    """Where the report of ``model`` goes: ``<folder>/export_report.json`` for a model folder (OpenVINO,
    ncnn, ...); ``<stem>_export_report.json`` beside a single-file model, so that several exports in one
    folder (``m.onnx``, ``m_int8.onnx``) keep their own report."""
    p = Path(fspath(model))
    if p.is_dir():
        return p / REPORT_NAME
    return p.with_name(f"{p.stem}_{REPORT_NAME}")


# ---- measurement -----------------------------------------------------------------------------------


def _load(model, *, conf: float, imgsz, options: dict | None, backend: str | None):
    from edgeseg.segmenter import Segmenter

    t0 = time.perf_counter()
    seg = Segmenter(model, backend=backend, conf=conf, imgsz=imgsz, **(options or {}))
    return seg, time.perf_counter() - t0


def _image(item) -> tuple[np.ndarray, str]:
    from edgeseg.image_io import load_image

    if isinstance(item, np.ndarray):
        return load_image(item), f"array {item.shape[1]}x{item.shape[0]}"
    return load_image(item), str(item)


def _common_outputs(seg, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs for ``image`` as (predictions, protos [nm, h, w]): a dense head's predictions as [C, N] with
    boxes in input pixels; an end-to-end head's rows as they are, [K, 6 + nm] (x1, y1, x2, y2, score, class,
    coefficients)."""
    blob, _ = seg.preprocess(image)
    layout = seg.backend.output_layout
    preds, protos = layout.split(seg.backend.infer(blob))
    preds = np.asarray(preds, dtype=np.float32)
    protos = np.asarray(protos, dtype=np.float32)
    rows = layout.preds_layout == "e2e"
    if layout.preds_layout == "nc":
        preds = preds.T
    if layout.protos_layout == "hwc":
        protos = protos.transpose(2, 0, 1)
    preds = np.array(preds, dtype=np.float32)  # a copy: box scaling must not touch the backend's buffer
    sx, sy = layout.box_scale
    if (sx, sy) != (1.0, 1.0):
        if rows:
            preds[:, [0, 2]] *= sx
            preds[:, [1, 3]] *= sy
        else:
            preds[0] *= sx
            preds[2] *= sx
            preds[1] *= sy
            preds[3] *= sy
    return preds, protos


def _kind(seg) -> str:
    """'rows' for an end-to-end head's final rows, 'dense' for per-anchor predictions."""
    return "rows" if seg.backend.output_layout.preds_layout == "e2e" else "dense"


def _match_rows(rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``rows`` reordered to follow ``ref``: each reference row takes the unused row of the same class with the
    nearest box (rows of near-equal score may come in another order, which is not an error of the export)."""
    if rows.shape != ref.shape or not len(ref):
        return rows
    free = np.ones(len(rows), bool)
    order = np.empty(len(ref), np.int64)
    for i in np.argsort(-ref[:, 4], kind="stable"):
        cost = np.abs(rows[:, :4] - ref[i, :4]).sum(1) + np.abs(rows[:, 4] - ref[i, 4]) * 1e3
        cost = np.where(free & (np.rint(rows[:, 5]) == np.rint(ref[i, 5])), cost, np.inf)
        j = int(np.argmin(cost)) if np.isfinite(cost).any() else int(np.flatnonzero(free)[0])
        order[i] = j
        free[j] = False
    return rows[order]


def _diff_stats(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    finite = np.isfinite(d)
    if not finite.all():
        return {"max_abs": float("inf"), "mean_abs": float("inf"), "nonfinite": int((~finite).sum())}
    return {"max_abs": float(d.max()) if d.size else 0.0, "mean_abs": float(d.mean()) if d.size else 0.0}


def _output_error(
    pairs: list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]], nc: int, kind: str = "dense"
) -> dict:
    """Per output (and per part of the predictions), max/mean abs difference over all images. ``kind`` "rows":
    end-to-end rows [K, 6+nm] on both sides, compared row by row (both sorted by score)."""
    if kind == "rows":
        pairs = [((_match_rows(ep, rp), epr), (rp, rpr)) for (ep, epr), (rp, rpr) in pairs]
        parts = {
            "output0": lambda p: p,
            "output0.boxes": lambda p: p[:, :4],
            "output0.scores": lambda p: p[:, 4],
            "output0.classes": lambda p: p[:, 5],
            "output0.mask_coefs": lambda p: p[:, 6:],
        }
    else:
        parts = {
            "output0": lambda p: p,
            "output0.boxes": lambda p: p[:4],
            "output0.scores": lambda p: p[4 : 4 + nc],
            "output0.mask_coefs": lambda p: p[4 + nc :],
        }
    out: dict[str, dict] = {}
    for key, take in [*list(parts.items()), ("output1", None)]:
        maxes, sums, count = [], 0.0, 0
        for (ep, epr), (rp, rpr) in pairs:
            a, b = (take(ep), take(rp)) if take else (epr, rpr)
            s = _diff_stats(a, b)
            maxes.append(s["max_abs"])
            sums += s["mean_abs"] * a.size
            count += a.size
        shape = list(take(pairs[0][0][0]).shape) if take is not None else list(pairs[0][0][1].shape)
        out[key] = {"shape": shape, "max_abs": float(max(maxes)), "mean_abs": float(sums / max(count, 1))}
    return out


def _small_masks(det, factor: int = MASK_DOWNSAMPLE) -> np.ndarray:
    """bool [n, ceil(H/f), ceil(W/f)]: each instance's mask averaged over f x f blocks, > 0.5."""
    h, w = det.image_shape
    hs, ws = -(-h // factor), -(-w // factor)
    n = len(det)
    out = np.zeros((n, hs, ws), dtype=bool)
    masks = det.masks
    for i in range(n):
        x0, y0, x1, y1 = (int(v) for v in masks.rects[i])
        if x1 <= x0 or y1 <= y0:
            continue
        bx0, by0 = x0 // factor, y0 // factor
        bx1, by1 = -(-x1 // factor), -(-y1 // factor)
        region = np.zeros(((by1 - by0) * factor, (bx1 - bx0) * factor), dtype=np.float32)
        region[y0 - by0 * factor : y1 - by0 * factor, x0 - bx0 * factor : x1 - bx0 * factor] = masks.bitmap(i)
        # pixels beyond the image (right/bottom edge) count as background, as they are outside it
        pooled = region.reshape(by1 - by0, factor, bx1 - bx0, factor).mean(axis=(1, 3))
        out[i, by0:by1, bx0:bx1] = pooled > 0.5
    return out


def _metric_dict(m) -> dict:
    return {
        "precision": float(m.precision),
        "recall": float(m.recall),
        "map50": float(m.map50),
        "map50_95": float(m.map50_95),
    }


def _median_timings(seg, image: np.ndarray, runs: int, warmup: int) -> dict:
    """:func:`edgeseg.benchmark.time_segmenter`'s medians, with ``total`` the sum of the stage medians (the
    report's columns add up) and the number of ``runs``."""
    timed = time_segmenter(seg, image, runs, warmup)
    med = {k: timed[k] for k in ("preprocess", "inference", "postprocess")}
    med["total"] = sum(med.values())
    med["process_cpu"] = timed["process_cpu"]
    med["runs"] = runs
    med["detections"] = timed["detections"]
    return med


def _dataset_for(data, names: dict[int, str]):
    """A dataset yaml/DatasetConfig as is; a list of image paths (labels beside, YOLO layout) as a config."""
    if isinstance(data, (list, tuple)):
        from edgeseg.data.dataset_yaml import DatasetConfig

        files = [Path(fspath(f)) for f in data]
        if not files:
            raise ValueError("data is an empty list of images")
        return DatasetConfig(yaml_file=None, root=files[0].parent, train=files, val=files, names=dict(names))
    return data


def build_report(
    exported: str | PathLike,
    reference: str | PathLike,
    *,
    images: Sequence[Any],
    imgsz=None,
    data=None,
    backend_options: dict | None = None,
    reference_options: dict | None = None,
    data_indices=None,
    data_split: str = "val",
    precision: str | None = None,
    fmt: str | None = None,
    runs: int = 10,
    warmup: int = 2,
    max_drop: float = MAX_DROP_POINTS,
    exported_backend: str | None = None,
    reference_backend: str | None = None,
    progress: bool = False,
) -> dict:
    """Measure ``exported`` against the fp32 ``reference`` (see the module docstring); returns a JSON-able dict.

    Args:
        exported: the exported model (file or folder; any format an edgeseg backend runs).
        reference: the fp32 reference: the source checkpoint (``.pt``, run by the torch backend) or an
            fp32 export.
        images: image paths or BGR arrays (e.g. calibration images); at least one.
        imgsz: input size of the reference (int or (h, w)); default: the export's input size.
        data: a dataset yaml / DatasetConfig, or a list of labelled image paths, for the true val mAP.
        data_indices: image subset of ``data``'s split (e.g. ``slice(64, 128)``).
        backend_options / reference_options: options for the export's / reference's backend.
        precision: 'fp32', 'fp16' or 'int8' (default: :func:`guess_precision`).
        runs, warmup: timed runs (medians reported) and untimed warm-up runs per model.
        max_drop: mask mAP50-95 drop (points) above which a warning is raised.
    """
    from edgeseg.metrics import SegmentMetrics
    from edgeseg.version import __version__

    images = list(images) if not isinstance(images, (str, PathLike, np.ndarray)) else [images]
    if not images:
        raise ValueError("build_report needs at least one image")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive int, got {runs!r}")
    exported_path, reference_path = Path(fspath(exported)), Path(fspath(reference))
    precision = precision or guess_precision(exported_path)
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision must be 'fp32', 'fp16' or 'int8', got {precision!r}")
    started = time.perf_counter()

    exp, exp_load = _load(
        exported_path, conf=REFERENCE_CONF, imgsz=None, options=backend_options, backend=exported_backend
    )
    ref_size = imgsz if imgsz is not None else exp.input_spec.shape
    ref, ref_load = _load(
        reference_path, conf=REFERENCE_CONF, imgsz=ref_size, options=reference_options, backend=reference_backend
    )
    if len(exp.names) != len(ref.names):
        raise ValueError(
            f"{exported_path.name} has {len(exp.names)} classes, the reference "
            f"{reference_path.name} {len(ref.names)}; they are not the same model"
        )

    loaded = [_image(item) for item in images]
    pairs, notes = [], []
    same_input = tuple(exp.input_spec.shape) == tuple(ref.input_spec.shape)
    same_kind = _kind(exp) == _kind(ref)  # a YOLO26 export ending before its top-k gives dense outputs
    if same_input and not same_kind:
        notes.append(
            f"raw predictions not compared: the export gives {_kind(exp)} predictions, the reference {_kind(ref)} "
            "(a YOLO26 export that ends before its top-k, made by the core); prototypes compared"
        )
    metrics = SegmentMetrics(names=ref.names)
    baseline = SegmentMetrics(names=ref.names)  # the reference against itself: the agreement ceiling
    n_ref_det = n_exp_det = 0
    for image, _ in loaded:
        if same_input:
            pairs.append((_common_outputs(exp, image), _common_outputs(ref, image)))
        gt = ref(image)
        exp.conf = EXPORT_CONF
        try:
            pred = exp(image)
        finally:
            exp.conf = REFERENCE_CONF
        n_ref_det += len(gt)
        n_exp_det += int((pred.confidence >= REFERENCE_CONF).sum())
        gt_masks = _small_masks(gt)
        metrics.update(pred.xyxy, pred.confidence, pred.class_id, _small_masks(pred), gt.xyxy, gt.class_id, gt_masks)
        baseline.update(gt.xyxy, gt.confidence, gt.class_id, gt_masks, gt.xyxy, gt.class_id, gt_masks)
    if not same_input:
        notes.append(
            f"output error not measured: input sizes differ (export {list(exp.input_spec.shape)}, "
            f"reference {list(ref.input_spec.shape)})"
        )
    agreement, ceiling = metrics.compute(), baseline.compute()
    output_error = None
    if pairs and same_kind:
        output_error = _output_error(pairs, len(ref.names), _kind(ref))
    elif pairs:  # the prototypes alone (the predictions are of different kinds)
        same_preds = [((ep, epr), (ep, rpr)) for (ep, epr), (_, rpr) in pairs]
        output_error = {"output1": _output_error(same_preds, len(ref.names))["output1"]}

    timing_image = loaded[0][0]
    latency = {
        "image": loaded[0][1],
        "exported": _median_timings(exp, timing_image, runs, warmup),
        "reference": _median_timings(ref, timing_image, max(1, min(runs, 5)), 1),
    }

    val = None
    if data is not None:
        from edgeseg.val import validate

        dataset = _dataset_for(data, ref.names)
        kw = {"imgsz": max(exp.input_spec.shape), "split": data_split, "progress": progress, "indices": data_indices}
        rv = validate(reference_path, dataset, rect=False, backend=reference_backend, **kw)
        ev = validate(exported_path, dataset, backend=exported_backend, **kw)
        val = {
            "data": str(
                getattr(dataset, "yaml_file", None) or data
                if not isinstance(data, (list, tuple))
                else f"{len(data)} images"
            ),
            "split": data_split,
            "indices": _describe_indices(data_indices),
            "images": ev.n_images,
            "instances": ev.n_instances,
            "imgsz": list(ev.imgsz),
            "reference": {"box": _metric_dict(rv.box), "mask": _metric_dict(rv.mask)},
            "exported": {"box": _metric_dict(ev.box), "mask": _metric_dict(ev.mask)},
            "drop_points": {
                "box_map50_95": 100 * (rv.box.map50_95 - ev.box.map50_95),
                "box_map50": 100 * (rv.box.map50 - ev.box.map50),
                "mask_map50_95": 100 * (rv.mask.map50_95 - ev.mask.map50_95),
                "mask_map50": 100 * (rv.mask.map50 - ev.mask.map50),
            },
        }

    report = {
        "edgeseg_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exported": _describe_model(exp, exported_path, exp_load, fmt=fmt, precision=precision),
        "reference": _describe_model(ref, reference_path, ref_load, fmt=None, precision="fp32"),
        "images": [d for _, d in loaded],
        "output_error": output_error,
        "agreement": {
            "reference_conf": REFERENCE_CONF,
            "export_conf": EXPORT_CONF,
            "reference_detections": n_ref_det,
            "export_detections_at_reference_conf": n_exp_det,
            "mask_resolution": f"1/{MASK_DOWNSAMPLE} of the original image",
            "box": _metric_dict(agreement.box),
            "mask": _metric_dict(agreement.mask),
            "reference_self": {"box": _metric_dict(ceiling.box), "mask": _metric_dict(ceiling.mask)},
            "loss_points": {
                "box_map50_95": 100 * (ceiling.box.map50_95 - agreement.box.map50_95),
                "mask_map50_95": 100 * (ceiling.mask.map50_95 - agreement.mask.map50_95),
            },
        },
        "val": val,
        "latency_ms": latency,
        "notes": notes,
        "warnings": [],
        "seconds": 0.0,
    }
    report["warnings"] = _warnings(report, max_drop)
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def _describe_indices(indices) -> str | None:
    if indices is None:
        return None
    if isinstance(indices, slice):
        return f"{indices.start or 0}:{'' if indices.stop is None else indices.stop}" + (
            f":{indices.step}" if indices.step not in (None, 1) else ""
        )
    if isinstance(indices, range) and indices.step == 1:
        return f"{indices.start}:{indices.stop}"
    return ",".join(str(int(i)) for i in indices)


def _describe_model(seg, path: Path, load_s: float, *, fmt: str | None, precision: str) -> dict:
    spec = seg.backend.input_spec
    size = model_size(path)
    return {
        "path": str(path),
        "format": fmt or formats.describe_path(path),
        "backend": seg.backend.name,
        "precision": precision,
        "input": [int(v) for v in spec.shape],
        "layout": spec.layout,
        "dtype": spec.dtype,
        "size_bytes": size,
        "size_mb": round(size / 1e6, 3),
        "load_s": round(load_s, 4),
        "head": _head_of(seg),
    }


def _head_of(seg) -> str:
    """Which head the model carries, in words: what its detections go through after the network."""
    layout = seg.backend.output_layout
    if layout.needs_nms:
        return "one-to-many (NMS)"
    if layout.preds_layout == "e2e":
        return "end-to-end (top-k in the graph, no NMS)"
    return f"one-to-one, top-{getattr(layout, 'topk', '?')} selection in the core (no NMS)"


def _warnings(report: dict, max_drop: float) -> list[str]:
    out = []
    precision = report["exported"]["precision"]
    what = f"{precision} export" if precision != "fp32" else "export"
    val = report.get("val")
    if val is not None:
        drop = val["drop_points"]["mask_map50_95"]
        if drop > max_drop:
            out.append(
                f"{what} loses {drop:.2f} points of mask mAP50-95 on {val['data']}"
                f"{' images ' + val['indices'] if val['indices'] else ''} "
                f"({100 * val['reference']['mask']['map50_95']:.2f} -> "
                f"{100 * val['exported']['mask']['map50_95']:.2f}; limit {max_drop:g} point"
                f"{'s' if max_drop != 1 else ''})"
            )
    else:
        a = report["agreement"]
        loss = a["loss_points"]["mask_map50_95"]
        if loss > max_drop:
            out.append(
                f"{what} reproduces the reference's masks with mask mAP50-95 "
                f"{100 * a['mask']['map50_95']:.2f} (the reference against itself: "
                f"{100 * a['reference_self']['mask']['map50_95']:.2f}): {loss:.2f} points lost, limit "
                f"{max_drop:g}. This compares masks with the reference's own, which is strict; measure the true "
                "mAP drop on labelled images with --report-data YAML (build_report(data=...))"
            )
    return out


# ---- output ----------------------------------------------------------------------------------------


def format_report(report: dict) -> str:
    """A readable multi-line summary (tables), ending with any WARNING block."""
    e, r = report["exported"], report["reference"]
    lines = [
        f"Export report: {e['path']}",
        f"  reference: {r['path']} ({r['backend']}, input {'x'.join(map(str, r['input']))})",
        f"  head: {e.get('head', '?')} (reference: {r.get('head', '?')})",
        (
            f"  images: {len(report['images'])} ({', '.join(Path(i).name for i in report['images'][:4])}"
            f"{', ...' if len(report['images']) > 4 else ''})"
        ),
    ]
    lines.append("")
    lines.append(
        f"  {'model':<10}{'format':>10}{'precision':>10}{'input':>10}{'size MB':>10}{'load s':>9}"
        f"{'pre ms':>9}{'infer ms':>10}{'post ms':>9}{'total ms':>10}"
    )
    lat = report["latency_ms"]
    for tag, m in (("exported", e), ("reference", r)):
        t = lat[tag]
        lines.append(
            f"  {tag:<10}{m['format']:>10}{m['precision']:>10}{'x'.join(map(str, m['input'])):>10}"
            f"{m['size_mb']:>10.2f}{m['load_s']:>9.2f}{t['preprocess']:>9.1f}{t['inference']:>10.1f}"
            f"{t['postprocess']:>9.1f}{t['total']:>10.1f}"
        )
    lines.append(f"  (median of {lat['exported']['runs']} runs on {Path(lat['image']).name})")
    err = report.get("output_error")
    if err:
        lines.append("")
        lines.append(f"  {'output':<20}{'shape':>18}{'max |diff|':>14}{'mean |diff|':>14}")
        for key, s in err.items():
            lines.append(f"  {key:<20}{s['shape']!s:>18}{s['max_abs']:>14.4g}{s['mean_abs']:>14.4g}")
    a = report["agreement"]
    lines.append("")
    lines.append(
        f"  agreement with the reference's {a['reference_detections']} detections "
        f"(conf {a['reference_conf']}) as ground truth:"
    )
    for tag in ("box", "mask"):
        lines.append(
            f"    {tag:<5}mAP50 {100 * a[tag]['map50']:6.2f}  mAP50-95 {100 * a[tag]['map50_95']:6.2f}"
            f"  (reference against itself {100 * a['reference_self'][tag]['map50_95']:.2f}: "
            f"{a['loss_points'][tag + '_map50_95']:.2f} points lost)"
        )
    v = report.get("val")
    if v:
        lines.append("")
        lines.append(
            f"  val mAP on {v['data']}{' images ' + v['indices'] if v['indices'] else ''} "
            f"({v['images']} images, {v['instances']} instances, imgsz {'x'.join(map(str, v['imgsz']))}):"
        )
        lines.append(f"    {'':<10}{'box mAP50':>11}{'box 50-95':>11}{'mask mAP50':>12}{'mask 50-95':>12}")
        for tag in ("reference", "exported"):
            b, m = v[tag]["box"], v[tag]["mask"]
            lines.append(
                f"    {tag:<10}{100 * b['map50']:>11.2f}{100 * b['map50_95']:>11.2f}"
                f"{100 * m['map50']:>12.2f}{100 * m['map50_95']:>12.2f}"
            )
        d = v["drop_points"]
        lines.append(
            f"    {'drop':<10}{d['box_map50']:>11.2f}{d['box_map50_95']:>11.2f}"
            f"{d['mask_map50']:>12.2f}{d['mask_map50_95']:>12.2f}"
        )
    for note in report.get("notes", []):
        lines.append(f"  note: {note}")
    for w in report.get("warnings", []):
        bar = "!" * 78
        lines += [
            "",
            bar,
            "WARNING: EXPORT ACCURACY BELOW THE LIMIT",
            f"WARNING: {w}",
            "WARNING: check the calibration data / quantisation settings before deploying this model.",
            bar,
        ]
    return "\n".join(lines)


def write_report(report: dict, path: str | PathLike | None = None, *, beside: str | PathLike | None = None) -> Path:
    """Write ``report`` as JSON atomically to ``path`` (default: :func:`report_path` of ``beside``, or of
    the exported model). Returns the path written."""
    if path is None:
        path = report_path(beside if beside is not None else report["exported"]["path"])
    target = Path(fspath(path))
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {target}: directory {directory} does not exist")
    text = json.dumps(report, indent=1, allow_nan=True) + "\n"
    atomic_write_text(target, text)
    return target


# ---- the export hook ---------------------------------------------------------------------------------


def default_report_images(data=None, *, max_images: int = 8, indices=None) -> tuple[list[Path], str]:
    """(images, where they came from) for an export report: the first ``max_images`` calibration images
    of ``data`` (its train split), else the sample photos (:func:`edgeseg.assets.sample_images`), else []."""
    if data is not None:
        from .calibration import calibration_images

        files = calibration_images(data, max_images=max_images, indices=indices)
        return files, f"{len(files)} calibration image(s) from {data}"
    from edgeseg.assets import sample_images

    found = sample_images()
    return found, ("the sample bus.jpg and zidane.jpg" if found else "")


def report_export(
    exported: str | PathLike | Any,
    reference: str | PathLike,
    *,
    data=None,
    val_data=None,
    images: Sequence[Any] | None = None,
    calibration_indices=None,
    print_fn=print,
    **options,
) -> dict | None:
    """Build, print and write the report of a finished export (an ExportResult or the model path).

    Images: ``images``, else calibration images of ``data`` (the export's calibration data), else the
    shared bus.jpg/zidane.jpg; with none available, prints why and returns None. ``val_data`` (with
    ``data_indices``) adds the true val mAP. ``options`` go to :func:`build_report` (``runs``, ...).
    """
    path = Path(fspath(getattr(exported, "path", exported)))
    fmt = options.pop("fmt", None) or getattr(exported, "format", None)
    if options.get("precision") is None:
        declared = getattr(exported, "precision", None)  # OpenVINO's result says fp32/fp16/int8
        options["precision"] = (
            declared if declared in ("fp32", "fp16", "int8") else ("fp16" if getattr(exported, "half", False) else None)
        )
    if images is None:
        images, where = default_report_images(data, indices=calibration_indices)
        if not images:
            print_fn("export report skipped: no images (pass --data, or put bus.jpg in ../shared/data/images)")
            return None
    else:
        where = f"{len(images)} given image(s)"
    print_fn(
        f"export report: {path.name} vs {Path(fspath(reference)).name} on {where}"
        + (f", val mAP on {val_data}" if val_data is not None else "")
        + " ..."
    )
    report = build_report(path, reference, images=images, data=val_data, fmt=fmt, **options)
    written = write_report(report, beside=path)
    print_fn(format_report(report))
    print_fn(f"report saved to {written}")
    return report


# ---- the `edgeseg export` options ------------------------------------------------------------------


def add_report_arguments(parser) -> None:
    """``--report/--no-report``, ``--report-data`` and ``--report-indices`` for ``edgeseg export``."""
    parser.add_argument(
        "--report",
        dest="report",
        action="store_true",
        default=True,
        help="after the export, measure it against the source checkpoint and write "
        "<model>_export_report.json (default on; images: calibration images from "
        "--data, else the shared bus.jpg/zidane.jpg)",
    )
    parser.add_argument("--no-report", dest="report", action="store_false", help="skip the export report")
    parser.add_argument(
        "--report-data",
        default=None,
        metavar="YAML",
        help="dataset for the report's true val mAP of export and checkpoint (default: none)",
    )
    parser.add_argument(
        "--report-indices",
        default=None,
        metavar="A:B",
        help="only these images of --report-data's val split, e.g. 64:128 (sorted by name)",
    )


def report_from_args(args, result) -> dict | None:
    """The report step of ``edgeseg export`` (``args`` from :func:`add_report_arguments`)."""
    if not getattr(args, "report", True):
        return None
    source = Path(fspath(args.model))
    if not formats.is_checkpoint(source) or not source.is_file():
        print(f"export report skipped: the reference must be a torch checkpoint, got {source}")
        return None
    return report_export(
        result,
        source,
        data=getattr(args, "data", None),
        val_data=getattr(args, "report_data", None),
        data_indices=parse_indices(getattr(args, "report_indices", None)),
        imgsz=tuple(result.imgsz),
    )
