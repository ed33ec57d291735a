"""Benchmark export formats: size, load time, per-stage latency and (with a dataset) box/mask mAP.

    from edgeseg.benchmark import benchmark
    result = benchmark("yolov8n-seg.pt", formats="onnx,openvino,ncnn", imgsz=640, data="coco128-seg.yaml")
    print(result.table())

For each format, the model is exported from the checkpoint (``.pt``) into a work folder (needs torch and
the exporter's packages; an export already in the work folder is reused), or, when ``model`` is already
an exported model, that model is used as is. Then, through :class:`edgeseg.segmenter.Segmenter`:

* **size**: bytes on disk of all the model's files;
* **load**: seconds to construct the Segmenter (read + compile);
* **latency**: ``warmup`` untimed runs, then ``runs`` timed runs on one image; the median of each stage
  (``preprocess``, ``inference``, ``postprocess`` from :attr:`Detections.timings`) and of the process CPU
  time per run (on a shared machine, wall time includes waiting for other processes; CPU time does not);
* **mAP** (with ``data``): :func:`edgeseg.val.validate` box and mask mAP50-95, optionally on an image
  subset (``data_indices``).

The summary names the fastest format (median total latency) whose mask mAP50-95 is within
``tolerance`` points (default 1) of the fp32 mAP: the first fp32 format measured or, if none, the
checkpoint itself (torch, square letterbox).

A format may carry a precision: ``openvino:int8`` (calibrated on ``data``'s train split),
``onnx:fp16``, ``ncnn:fp16``. A format that cannot be exported or run (package missing, not supported)
gets a row with its error instead of stopping the benchmark.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike, fspath
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .formats import FORMATS, PRECISIONS, format_named, guess_precision, is_checkpoint, model_size
from .metadata import parse_imgsz

__all__ = [
    "FORMAT_NAMES",
    "BenchmarkResult",
    "FormatResult",
    "benchmark",
    "head_kind",
    "parse_formats",
    "time_segmenter",
]

# every format edgeseg exports except the Edge TPU's (its compiler runs only on x86-64 Linux), then torch
FORMAT_NAMES = (*(n for n, f in FORMATS.items() if f.exporter is not None and n != "edgetpu"), "torch")
_EXPORTED = "exported"


@dataclass
class FormatResult:
    """One row of the benchmark table (times in ms unless named ``_s``; mAPs as fractions)."""

    format: str
    precision: str = "fp32"
    path: str | None = None
    size_mb: float | None = None
    export_s: float | None = None
    load_s: float | None = None
    preprocess: float | None = None
    inference: float | None = None
    postprocess: float | None = None
    total: float | None = None
    process_cpu: float | None = None
    detections: int | None = None
    box_map50_95: float | None = None
    mask_map50_95: float | None = None
    box_map50: float | None = None
    mask_map50: float | None = None
    head: str | None = None  # what follows the network: "nms", "end2end" (top-k in the graph) or "core top-k"
    error: str | None = None

    @property
    def name(self) -> str:
        return self.format if self.precision == "fp32" else f"{self.format}:{self.precision}"

    @property
    def pre_post_percent(self) -> float | None:
        """(pre + post) as a percentage of inference."""
        if self.inference is None or not self.inference or self.preprocess is None or self.postprocess is None:
            return None
        return 100.0 * (self.preprocess + self.postprocess) / self.inference


@dataclass
class BenchmarkResult:
    model: str
    imgsz: tuple[int, int]
    source: str
    runs: int
    threads: int | None
    rows: list[FormatResult] = field(default_factory=list)
    data: str | None = None
    data_indices: str | None = None
    reference: str | None = None  # which row/model gives the fp32 mAP
    reference_mask_map50_95: float | None = None
    tolerance: float = 1.0

    @property
    def fastest(self) -> FormatResult | None:
        """The fastest row within ``tolerance`` points of the fp32 mask mAP (without data: fastest overall)."""
        ok = [r for r in self.rows if r.error is None and r.total is not None]
        if self.reference_mask_map50_95 is not None:
            ok = [
                r
                for r in ok
                if r.mask_map50_95 is not None
                and 100 * (self.reference_mask_map50_95 - r.mask_map50_95) <= self.tolerance
            ]
        return min(ok, key=lambda r: r.total if r.total is not None else float("inf")) if ok else None

    def summary_line(self) -> str:
        best = self.fastest
        if best is None:
            return "fastest format: none (every format failed or lost more than the tolerance)"
        if self.reference_mask_map50_95 is None:
            return (
                f"fastest format: {best.name} ({best.total:.1f} ms per image; no --data given, so mAP was not checked)"
            )
        best_map = best.mask_map50_95
        assert best_map is not None  # with a reference, fastest keeps only rows that have a mask mAP
        drop = 100 * (self.reference_mask_map50_95 - best_map)
        return (
            f"fastest format within {self.tolerance:g} point of the fp32 mask mAP50-95 "
            f"({100 * self.reference_mask_map50_95:.2f}, {self.reference}): {best.name} "
            f"({best.total:.1f} ms per image, mask mAP50-95 {100 * best_map:.2f}, "
            f"{drop:+.2f} points below)"
        )

    def table(self) -> str:
        h, w = self.imgsz
        lines = [
            f"benchmark: {self.model} at {h}x{w} on {self.source}, median of {self.runs} runs"
            f"{f', {self.threads} threads' if self.threads else ''}"
            + (
                f"; mAP on {self.data}" + (f" images {self.data_indices}" if self.data_indices else "")
                if self.data
                else ""
            )
        ]
        head = (
            f"{'format':<14}{'size MB':>8}{'load s':>8}{'pre ms':>8}{'infer ms':>9}{'post ms':>8}"
            f"{'total ms':>9}{'cpu ms':>8}{'pre+post':>9}{'dets':>5}"
        )
        if self.data:
            head += f"{'box mAP':>9}{'mask mAP':>9}"
        lines.append(head)
        for r in self.rows:
            if r.error is not None:
                lines.append(f"{r.name:<14}  error: {r.error}")
                continue
            line = (
                f"{r.name:<14}{r.size_mb:>8.1f}{r.load_s:>8.2f}{r.preprocess:>8.1f}{r.inference:>9.1f}"
                f"{r.postprocess:>8.1f}{r.total:>9.1f}{r.process_cpu:>8.1f}{r.pre_post_percent:>8.1f}%"
                f"{r.detections:>5}"
            )
            if self.data:
                line += f"{_pct(r.box_map50_95):>9}{_pct(r.mask_map50_95):>9}"
            lines.append(line)
        lines.append(
            "(pre+post: preprocess + postprocess as % of inference; cpu: process CPU time per image; "
            "mAP: mAP50-95 in %)"
        )
        heads = [f"{r.name} {r.head}" for r in self.rows if r.error is None and r.head not in (None, "nms")]
        if heads:  # YOLO26: which rows run without NMS, and where their top-k selection is made
            lines.append("NMS-free heads: " + ", ".join(heads))
        lines.append(self.summary_line())
        return "\n".join(lines)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "rows"}
        out["imgsz"] = list(self.imgsz)
        out["rows"] = [dict(asdict(r), name=r.name, pre_post_percent=r.pre_post_percent) for r in self.rows]
        best = self.fastest
        out["fastest"] = best.name if best else None
        out["summary"] = self.summary_line()
        return out


def head_kind(layout: Any) -> str:
    """ "nms" (a one-to-many head), "end2end" (top-k selection in the graph) or "core top-k" (a one-to-one head
    exported without its top-k, which the native core makes)."""
    if layout.needs_nms:
        return "nms"
    return "end2end" if layout.preds_layout == "e2e" else "core top-k"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def parse_formats(formats: str | Sequence[str]) -> list[tuple[str, str]]:
    """'onnx,openvino:int8' -> [('onnx', 'fp32'), ('openvino', 'int8')]; clear ValueError otherwise."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"formats must be names like 'onnx' or 'openvino:int8', got {item!r}")
        text = item.strip().lower()
        if not text:
            continue
        fmt, _, precision = text.partition(":")
        precision = precision or "fp32"
        if fmt not in FORMAT_NAMES:
            raise ValueError(f"unknown format '{fmt}'; choose from {', '.join(FORMAT_NAMES)}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{precision}' in '{item}'; choose from {', '.join(PRECISIONS)}")
        if fmt == "torch" and precision != "fp32":
            raise ValueError(f"'{item}': the torch checkpoint runs in fp32 only")
        if (fmt, precision) in out:
            raise ValueError(f"format '{item}' given twice")
        out.append((fmt, precision))
    if not out:
        raise ValueError("no formats given (e.g. --formats onnx,openvino,ncnn)")
    return out


def time_segmenter(seg, image: np.ndarray, runs: int, warmup: int) -> dict[str, float]:
    """Medians over ``runs`` timed calls (after ``warmup`` untimed ones): per stage, total, process CPU."""
    for _ in range(warmup):
        seg(image)
    stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": []}
    totals, cpu = [], []
    detections = 0
    for _ in range(runs):
        c0 = time.process_time()
        det = seg(image)
        cpu.append((time.process_time() - c0) * 1e3)
        for k in stages:
            stages[k].append(float(det.timings[k]))
        totals.append(sum(float(det.timings[k]) for k in stages))
        detections = len(det)
    out = {k: statistics.median(v) for k, v in stages.items()}
    out["total"] = statistics.median(totals)
    out["process_cpu"] = statistics.median(cpu)
    out["detections"] = detections
    return out


def _export(model: Path, fmt: str, precision: str, imgsz, workdir: Path, data, reuse: bool, say=print):
    """(path, seconds) of the export of ``model`` to ``fmt`` in ``workdir`` (reused when present)."""
    from importlib import import_module

    spec = format_named(fmt)
    target = workdir / spec.export_target(model.stem, precision)
    if reuse and target.exists() and target.stat().st_mtime >= model.stat().st_mtime:
        say(f"[{fmt}{'' if precision == 'fp32' else ':' + precision}] reusing {target}")
        return target, 0.0
    say(f"[{fmt}{'' if precision == 'fp32' else ':' + precision}] exporting {model.name} ...")
    func = import_module(spec.exporter_module).export
    options: dict[str, Any] = {"imgsz": imgsz, "output": target}
    if precision == "fp16":
        options["half"] = True
    elif precision == "int8":
        if "int8" not in spec.export_options:
            raise ValueError(f"the {fmt} exporter has no int8 option")
        if data is None:
            raise ValueError(f"{fmt}:int8 needs --data (calibration images)")
        options.update(int8=True, data=data)
    t0 = time.perf_counter()
    result = func(model, **options)
    return Path(result.path), time.perf_counter() - t0


def _default_source() -> Path | None:
    from .assets import sample_images

    found = sample_images()
    return found[0] if found else None


def benchmark(
    model: str | PathLike,
    formats: str | Sequence[str] = "onnx",
    *,
    imgsz=640,
    data=None,
    data_indices=None,
    runs: int = 50,
    warmup: int = 5,
    source=None,
    threads: int | None = None,
    workdir: str | PathLike | None = None,
    reuse: bool = True,
    tolerance: float = 1.0,
    conf: float = 0.25,
    print_fn: Callable[[str], None] | None = print,
) -> BenchmarkResult:
    """Benchmark ``model`` (a checkpoint to export, or one exported model) in each of ``formats``.

    Args:
        model: a ``.pt`` checkpoint (exported to each format) or an exported model (benchmarked as is).
        formats: 'onnx,openvino,ncnn' or a list; 'fmt:int8' / 'fmt:fp16' for other precisions.
        imgsz: export input size (int or (h, w)).
        data: dataset yaml for box/mask mAP (and int8 calibration); data_indices: its val image subset.
        runs, warmup: timed and untimed runs per format; source: the timed image (default bus.jpg).
        threads: inference threads (every backend's ``intra_op_threads``); default: the backend's choice.
        workdir: where exports go (default: a temporary folder, removed afterwards); reuse: reuse
            exports already there.
        tolerance: mAP points for the "fastest format within ... of fp32" line.
        conf: score threshold of the timed runs (lower it to time post-processing with more detections).
    """
    from edgeseg.image_io import load_image
    from edgeseg.segmenter import Segmenter

    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive int, got {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    say = print_fn or (lambda _: None)
    model = Path(fspath(model))
    if not model.exists():
        raise FileNotFoundError(f"model not found: {model}")
    from_checkpoint = model.is_file() and is_checkpoint(model)
    wanted = parse_formats(formats)
    if not from_checkpoint:  # an exported model runs as it is, once: its backend and precision name the row
        wanted = [(_EXPORTED, "fp32")]
    size = parse_imgsz(imgsz)
    if source is None:
        source = _default_source()
        if source is None:
            raise ValueError("no source image: pass source=... (--source IMAGE)")
    image = load_image(source)
    source_name = str(source) if not isinstance(source, np.ndarray) else f"array {image.shape[1]}x{image.shape[0]}"
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= float(conf) < 1.0:
        raise ValueError(f"conf must be a number in [0, 1), got {conf!r}")
    options: dict[str, Any] = {} if threads is None else {"intra_op_threads": int(threads)}
    result = BenchmarkResult(
        model=str(model),
        imgsz=size,
        source=source_name,
        runs=runs,
        threads=threads,
        data=str(data) if data is not None else None,
        tolerance=float(tolerance),
        data_indices=_describe(data_indices),
    )
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgeseg-bench-")
        work = Path(tmp.name)
    else:
        work = Path(fspath(workdir))
        work.mkdir(parents=True, exist_ok=True)
    try:
        for fmt, precision in wanted:
            row = FormatResult(format=fmt, precision=precision)
            result.rows.append(row)
            try:
                if from_checkpoint and fmt != "torch":
                    path, row.export_s = _export(model, fmt, precision, size, work, data, reuse, say)
                else:  # the checkpoint itself (torch) or an already exported model
                    path = model
                row.path = str(path)
                row.size_mb = model_size(path) / 1e6
                t0 = time.perf_counter()
                seg = Segmenter(path, imgsz=size if fmt == "torch" else None, conf=float(conf), **options)
                row.load_s = time.perf_counter() - t0
                row.head = head_kind(seg.backend.output_layout)
                if fmt == _EXPORTED:
                    row.format, row.precision = seg.backend.name, guess_precision(path)
                say(f"[{row.name}] timing {runs} runs ...")
                t = time_segmenter(seg, image, runs, warmup)
                for k in ("preprocess", "inference", "postprocess", "total", "process_cpu"):
                    setattr(row, k, t[k])
                row.detections = int(t["detections"])
                del seg
                if data is not None:
                    from edgeseg.val import validate

                    say(f"[{row.name}] validating on {data} ...")
                    v = validate(
                        path,
                        data,
                        imgsz=max(size),
                        indices=data_indices,
                        progress=False,
                        rect=False if fmt == "torch" else None,
                    )
                    row.box_map50_95, row.mask_map50_95 = v.box.map50_95, v.mask.map50_95
                    row.box_map50, row.mask_map50 = v.box.map50, v.mask.map50
            except Exception as exc:  # one format failing (missing package, unsupported) must not stop the rest
                row.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                say(f"[{row.name}] failed: {row.error}")
        if data is not None:
            _set_reference(result, model, from_checkpoint, data, data_indices, size, say)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return result


def _set_reference(result: BenchmarkResult, model: Path, from_checkpoint: bool, data, data_indices, size, say) -> None:
    fp32 = [r for r in result.rows if r.precision == "fp32" and r.error is None and r.mask_map50_95 is not None]
    if fp32:
        result.reference = f"{fp32[0].name}"
        result.reference_mask_map50_95 = fp32[0].mask_map50_95
    elif from_checkpoint:
        from edgeseg.val import validate

        say(f"[fp32 reference] validating {model.name} (torch) ...")
        v = validate(model, data, imgsz=max(size), indices=data_indices, progress=False, rect=False)
        result.reference = f"{model.name} (torch)"
        result.reference_mask_map50_95 = v.mask.map50_95


def _describe(indices) -> str | None:
    if indices is None:
        return None
    if isinstance(indices, slice):
        return f"{indices.start or 0}:{'' if indices.stop is None else indices.stop}"
    return ",".join(str(int(i)) for i in indices)


def save_json(result: BenchmarkResult, path: str | PathLike) -> Path:
    target = Path(fspath(path))
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target
