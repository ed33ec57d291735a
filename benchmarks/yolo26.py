"""YOLO26-seg speed, measured in one run: what the NMS-free head saves after the network, and the network itself.

    python benchmarks/yolo26.py --yolo26 runs/y26/shapes/weights/best.pt --runs 50

1. **pre + post-processing** (``edgeseg benchmark``'s stages, :func:`edgeseg.benchmark.time_segmenter`) at 640 on
   ONNX Runtime: yolo26n-seg exported end to end (rows from the graph's top-k: no decode scan, no NMS), the same
   checkpoint exported one-to-many (decode + NMS, what Ultralytics exports by default), and a YOLOv8n-seg of the same
   size (``--v8``, default the shared COCO yolov8n-seg-coco-dq.pt). Each model runs at ``--conf`` on the image it
   finds objects in (``--image26`` for the YOLO26 model, default a shapes val image; ``--image8``, default bus.jpg):
   post-processing grows with the number of detections, which the table prints.
2. **inference** on OpenVINO (fp32, CPU, the backend's default settings) at 640: yolo26n-seg vs yolo11n-seg (``--v11``, default the
   shared yolo11n-seg-rand.pt: inference time does not depend on the weights).

The models are timed in interleaved rounds (``--rounds``, each ``--runs`` runs per model) and the medians of all runs
are printed with their ratios; these machines are noisy, so only figures of one run are compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _export(fmt: str, model: Path, out: Path, **options) -> Path:
    from importlib import import_module

    from edgeseg.formats import FORMATS

    export = import_module(FORMATS[fmt].exporter_module).export  # exporters are reached through the table
    return Path(export(str(model), imgsz=640, output=str(out), **options).path)


def _stages(models: dict, images: dict, runs: int, rounds: int, conf: float) -> dict:
    from edgeseg import Segmenter
    from edgeseg.benchmark import time_segmenter
    from edgeseg.image_io import load_image

    segs = {name: Segmenter(str(path), conf=conf) for name, path in models.items()}
    loaded = {name: load_image(str(images[name])) for name in models}
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in models}
    dets = {}
    for _ in range(rounds):
        for name, seg in segs.items():
            t = time_segmenter(seg, loaded[name], runs, 3)
            for k in ("preprocess", "inference", "postprocess"):
                samples[name].setdefault(k, []).append(t[k])
            dets[name] = int(t["detections"])
    return {
        n: {**{k: statistics.median(v) for k, v in s.items()}, "detections": dets[n], "image": Path(images[n]).name}
        for n, s in samples.items()
    }


def _inference(models: dict, runs: int, rounds: int) -> dict:
    import numpy as np

    from edgeseg import Segmenter

    segs = {name: Segmenter(str(path), backend="openvino") for name, path in models.items()}
    blobs = {}
    for name, seg in segs.items():
        spec = seg.backend.input_spec
        blobs[name] = np.random.default_rng(0).random(spec.blob_shape, dtype=np.float32)
        for _ in range(5):
            seg.backend.infer(blobs[name])
    times: dict[str, list[float]] = {n: [] for n in models}
    for _ in range(rounds):
        for name, seg in segs.items():
            for _ in range(runs):
                t0 = time.perf_counter()
                seg.backend.infer(blobs[name])
                times[name].append((time.perf_counter() - t0) * 1000)
    return {n: statistics.median(v) for n, v in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--yolo26", default=str(SHARED / "models" / "yolo26n-seg-shapes.pt"), help="a yolo26n-seg .pt")
    parser.add_argument("--v8", default=str(SHARED / "models" / "yolov8n-seg-coco-dq.pt"), help="a yolov8n-seg .pt")
    parser.add_argument("--v11", default=str(SHARED / "models" / "yolo11n-seg-rand.pt"), help="a yolo11n-seg .pt")
    parser.add_argument("--image26", default=str(SHARED / "data" / "shapes-seg" / "images" / "val" / "000006.jpg"))
    parser.add_argument("--image8", default=str(SHARED / "data" / "images" / "bus.jpg"))
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for p in (args.yolo26, args.v8, args.v11, args.image26, args.image8):
        if not Path(p).exists():
            print(f"not found: {p}", file=sys.stderr)
            return 2
    y26 = Path(args.yolo26)
    with tempfile.TemporaryDirectory(prefix="edgeseg-y26-bench-") as tmp:
        work = Path(tmp)
        print("exporting ...", flush=True)
        onnx = {
            "yolo26n end2end": _export("onnx", y26, work / "y26_e2e.onnx"),
            "yolo26n one2many+NMS": _export("onnx", y26, work / "y26_o2m.onnx", head="one2many"),
            "yolov8n +NMS": _export("onnx", Path(args.v8), work / "v8.onnx"),
        }
        images = {"yolo26n end2end": args.image26, "yolo26n one2many+NMS": args.image26, "yolov8n +NMS": args.image8}
        stages = _stages(onnx, images, args.runs, args.rounds, args.conf)
        print(
            f"\n1. pre + post-processing, ONNX Runtime at 640, conf {args.conf}, medians of {args.rounds}x{args.runs}"
        )
        print(f"{'model':<22}{'image':>12}{'dets':>6}{'pre ms':>9}{'post ms':>9}{'pre+post':>10}{'infer ms':>10}")
        for name, s in stages.items():
            pp = s["preprocess"] + s["postprocess"]
            print(
                f"{name:<22}{s['image']:>12}{s['detections']:>6}{s['preprocess']:>9.2f}{s['postprocess']:>9.2f}"
                f"{pp:>10.2f}{s['inference']:>10.1f}"
            )
        e2e = stages["yolo26n end2end"]
        for other in ("yolo26n one2many+NMS", "yolov8n +NMS"):
            o = stages[other]
            ratio = (o["preprocess"] + o["postprocess"]) / (e2e["preprocess"] + e2e["postprocess"])
            print(f"pre+post of {other} / yolo26n end2end: {ratio:.2f}x")

        ov = {
            "yolo26n-seg": _export("openvino", y26, work / "y26_openvino_model"),
            "yolo11n-seg": _export("openvino", Path(args.v11), work / "y11_openvino_model"),
        }
        inf = _inference(ov, args.runs, args.rounds)
        print(f"\n2. inference, OpenVINO fp32 CPU at 640, medians of {args.rounds}x{args.runs}")
        for name, ms in inf.items():
            print(f"{name:<14}{ms:>9.1f} ms")
        print(f"yolo26n-seg / yolo11n-seg: {inf['yolo26n-seg'] / inf['yolo11n-seg']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
