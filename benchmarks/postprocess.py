"""Post-processing benchmark: decode + NMS + scale_boxes + full-resolution (retina) masks.

Synthetic but realistic raw outputs of a 640x640 YOLOv8-seg model ([1, 116, 8400] and
[1, 32, 160, 160]) for a 1080x1920 frame: N planted person-sized objects of varied sizes, each
with two slightly shifted lower-scoring duplicates for NMS to remove, and low background scores.
Compares the native core (edgeseg.ops) with the plain numpy reference pipeline (tests/reference),
then shows that the mask core's time follows the instances' pixel area, not the frame size.

    python benchmarks/postprocess.py [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeseg.ops.decode import decode  # noqa: E402
from edgeseg.ops.letterbox import letterbox_geometry, scale_boxes  # noqa: E402
from edgeseg.ops.masks import masks_native  # noqa: E402
from edgeseg.ops.nms import nms  # noqa: E402
from tests.reference import decode as ref_decode  # noqa: E402
from tests.reference import letterbox as ref_letterbox  # noqa: E402
from tests.reference import masks as ref_masks  # noqa: E402
from tests.reference import nms as ref_nms  # noqa: E402

NC, NM, ANCHORS = 80, 32, 8400


def synthetic_outputs(n_objects: int, seed: int = 0):
    """Raw head outputs with n_objects planted person-sized boxes (+2 duplicates each)."""
    rng = np.random.default_rng(seed)
    out0 = np.empty((1, 4 + NC + NM, ANCHORS), np.float32)
    out0[0, 0:2] = rng.uniform(0, 640, (2, ANCHORS))
    out0[0, 2:4] = rng.uniform(4, 60, (2, ANCHORS))
    out0[0, 4 : 4 + NC] = rng.uniform(0, 0.05, (NC, ANCHORS))  # background: low scores
    out0[0, 4 + NC :] = rng.normal(0, 1, (NM, ANCHORS))
    anchors = rng.choice(ANCHORS, size=3 * n_objects, replace=False).reshape(n_objects, 3)
    placed = []
    for k in range(n_objects):
        while True:  # objects may overlap, but not so much that NMS would merge two of them
            h = rng.uniform(60, 220)  # input pixels (x3 in the 1920-wide frame)
            w = h * rng.uniform(0.35, 0.6)
            cx, cy = rng.uniform(w / 2, 640 - w / 2), rng.uniform(140 + h / 2, 500 - h / 2)
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)
            if not placed or ref_nms.iou_one(box, np.array(placed)).max() < 0.3:
                placed.append(box)
                break
        cls = 0 if k % 4 else int(rng.integers(1, NC))
        coef = rng.normal(0, 1, NM)
        for j, a in enumerate(anchors[k]):
            shift = 0 if j == 0 else rng.uniform(-0.03, 0.03) * w
            out0[0, 0:4, a] = (cx + shift, cy + shift, w, h)
            out0[0, 4 : 4 + NC, a] = 0.01
            out0[0, 4 + cls, a] = (0.9, 0.6, 0.5)[j]
            out0[0, 4 + NC :, a] = coef + rng.normal(0, 0.05, NM)
    # smooth-ish prototypes: low-frequency patterns plus noise
    yy, xx = np.mgrid[0:160, 0:160] / 160.0
    freq = rng.uniform(1, 6, (NM, 2))
    phase = rng.uniform(0, 2 * np.pi, (NM, 2))
    protos = np.sin(2 * np.pi * freq[:, :1, None] * xx + phase[:, :1, None]) * np.cos(
        2 * np.pi * freq[:, 1:, None] * yy + phase[:, 1:, None]
    )
    protos = (protos + rng.normal(0, 0.2, protos.shape)).astype(np.float32)[None]
    return out0, protos


def native_pipeline(out0, protos, info):
    c = decode(out0, NC, conf=0.25)
    keep = nms(c.boxes, c.scores, c.class_ids, iou=0.7, max_det=300)
    boxes = scale_boxes(c.boxes[keep], info)
    return masks_native(protos, c.coefs[keep], boxes, info)


def reference_pipeline(out0, protos, info):
    c = ref_decode.decode(out0, NC, conf=0.25)
    keep = ref_nms.nms(c["boxes"], c["scores"], c["class_ids"], iou=0.7, max_det=300)
    boxes = ref_letterbox.scale_boxes(
        c["boxes"][keep], info.scale, info.pad_left, info.pad_top, info.orig_w, info.orig_h
    ).astype(np.float32)
    coefs = c["coefs"][keep]
    # whole-map masks, one instance at a time to bound memory
    return [
        ref_masks.masks_native_ref(protos, coefs[i : i + 1], boxes[i : i + 1], (info.orig_h, info.orig_w))[0][0]
        for i in range(len(boxes))
    ]


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def stage_breakdown(out0, protos, info, runs):
    c = decode(out0, NC, conf=0.25)
    keep = nms(c.boxes, c.scores, c.class_ids, iou=0.7, max_det=300)
    boxes = scale_boxes(c.boxes[keep], info)
    coefs = c.coefs[keep]
    return {
        "decode": median_ms(lambda: decode(out0, NC, conf=0.25), runs),
        "nms": median_ms(lambda: nms(c.boxes, c.scores, c.class_ids, iou=0.7, max_det=300), runs),
        "scale_boxes": median_ms(lambda: scale_boxes(c.boxes[keep], info), runs),
        "masks": median_ms(lambda: masks_native(protos, coefs, boxes, info), runs),
    }


def scaling(runs: int):
    """Same 30 instances (same pixel area each) on 720p / 1080p / 4K, then with doubled box area."""
    rng = np.random.default_rng(1)
    protos = rng.normal(0, 1, (1, NM, 160, 160)).astype(np.float32)
    coefs = rng.normal(0, 1, (30, NM)).astype(np.float32)
    wh = np.stack([rng.uniform(60, 140, 30), rng.uniform(150, 330, 30)], 1)  # person-sized, pixels
    rows = []
    for H, W in [(720, 1280), (1080, 1920), (2160, 3840)]:
        info = letterbox_geometry((H, W), 640)
        for grow in (1.0, np.sqrt(2)):
            size = wh * grow
            xy = rng.uniform(0, 1, (30, 2)) * ([W, H] - size)
            boxes = np.concatenate([xy, xy + size], 1).astype(np.float32)
            px = int(
                ((np.ceil(boxes[:, 2]) - np.ceil(boxes[:, 0])) * (np.ceil(boxes[:, 3]) - np.ceil(boxes[:, 1]))).sum()
            )
            t = median_ms(lambda boxes=boxes, info=info: masks_native(protos, coefs, boxes, info), runs)
            rows.append((f"{W}x{H}", px, t))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--ref-runs", type=int, default=None, help="runs for the slow reference (default: --runs)")
    args = ap.parse_args()
    ref_runs = args.ref_runs or args.runs
    H, W = 1080, 1920
    info = letterbox_geometry((H, W), 640)
    print(
        f"frame {W}x{H}, model input 640x640, outputs [1,116,8400] + [1,32,160,160]; medians of "
        f"{args.runs} runs (reference: {ref_runs})"
    )
    print(f"{'detections':>10} {'native ms':>10} {'reference ms':>13} {'speed-up':>9}   native stages (ms)")
    for n in (10, 30):
        out0, protos = synthetic_outputs(n)
        ms = native_pipeline(out0, protos, info)
        ref = reference_pipeline(out0, protos, info)
        assert len(ms) == len(ref) == n, (len(ms), len(ref), n)
        diff = max(int((ms.full([i])[0] != ref[i]).sum()) for i in range(n))
        t_nat = median_ms(lambda out0=out0, protos=protos: native_pipeline(out0, protos, info), args.runs)
        t_ref = median_ms(lambda out0=out0, protos=protos: reference_pipeline(out0, protos, info), ref_runs)
        stages = stage_breakdown(out0, protos, info, args.runs)
        parts = ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
        px = int((ms.rects[:, 2] - ms.rects[:, 0]).astype(np.int64) @ (ms.rects[:, 3] - ms.rects[:, 1]))
        print(
            f"{n:>10} {t_nat:>10.3f} {t_ref:>13.1f} {t_ref / t_nat:>8.0f}x   {parts}  "
            f"[{px / 1e6:.2f} Mpx of boxes, max {diff} px differ from reference]"
        )

    print("\nmask core vs frame size (30 instances; same box pixel area per row pair):")
    print(f"{'frame':>10} {'box px':>10} {'masks ms':>9} {'ns/px':>7}")
    for frame, px, t in scaling(args.runs):
        print(f"{frame:>10} {px:>10} {t:>9.3f} {t * 1e6 / px:>7.2f}")


if __name__ == "__main__":
    main()
