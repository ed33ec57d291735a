"""Tracking quality (HOTA, MOTA, IDF1, ID switches) and tracker speed on the synthetic clips with identities.

    python benchmarks/tracking.py                                  # every scenario, both inputs
    python benchmarks/tracking.py --scenarios crossing,exits --frames 150
    python benchmarks/tracking.py --quick                          # 60 frames of two scenarios (tests run this)

For each scenario of :mod:`edgeseg.synthetic.tracks` (640x360, 30 fps, ground-truth identities) and each input,
every tracker runs on the same detections, prepared before any tracker runs:

- ``model``: the built-in demo model (ONNX Runtime) at ``--conf`` (0.1: low enough for ByteTrack's second stage),
  NMS per class (the model's default: a class it hesitates over gives two boxes on one object);
- ``model-any``: the same with NMS across classes (one box per object), as ``edgeseg run --track`` runs it;
- ``noisy``: the ground truth with box jitter, scores that fall with occlusion, misses, class flips and
  short-lived false positives, seeded (``tests/tracking_eval.py: noisy_detections``); independent of any model.
  Its masks are the ground truth's visible masks (rows kept), so ``ours+mask`` gets exact masks here.

Trackers: ``ours`` (:class:`edgeseg.tracking.Tracker`, box IoU, class-consistent tracks), ``ours+mask`` (box and
mask IoU blended, ``mask_weight`` 0.5), ``ours-run`` (what ``edgeseg run --track`` uses: mask weight 0.5, tracks
that follow a class change), and from Roboflow's ``trackers`` (Apache-2.0): ``bytetrack`` (ByteTrackTracker with our
thresholds: high 0.5, new track 0.6, IoU 0.2, 2 hits to confirm), ``bytetrack-defaults`` (its own defaults) and
``ocsort`` (OCSORTTracker, our thresholds). All keep a lost track 30 frames at 30 fps. Only confirmed tracks are
scored (ours reports nothing else; theirs' ``tracker_id == -1`` rows are dropped).

Metrics: TrackEval's HOTA, CLEAR (MOTA, IDSW) and Identity (IDF1), class-agnostic on boxes, as for MOTChallenge
(``tests/tracking_eval.py: evaluate``). Time: ``update us`` is the median over the frames of one ``update`` call
of the tracker, in this process, on prebuilt inputs (edgeseg ``Detections`` for ours, with the masks, which it
carries into its output; ``supervision.Detections`` with boxes, scores and classes for theirs: the conversion is
not timed); figures of different runs of this script are not comparable on a noisy
machine. Objects that leave and come back keep their ground-truth id: see edgeseg/synthetic/tracks.py.

Runs with ours alone when ``trackers`` or ``trackeval`` is missing, and without the model input when
onnxruntime is (it says what it skips).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeseg.synthetic.tracks import SCENARIOS, tracking_clip  # noqa: E402
from tests import tracking_eval as te  # noqa: E402

INPUTS = ("model", "model-any", "noisy")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fmt(m: dict | None, key: str, pct: bool = True) -> str:
    if m is None:
        return "-"
    return f"{100 * m[key]:.1f}" if pct else str(m[key])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    ap.add_argument("--frames", type=int, default=None, help="first N frames of each scenario (default: all)")
    ap.add_argument("--inputs", default=",".join(INPUTS), help="comma-separated, of model, model-any, noisy")
    ap.add_argument("--conf", type=float, default=0.1, help="the demo model's confidence threshold")
    ap.add_argument("--seed", type=int, default=0, help="looks of the clips and noise of the noisy input")
    ap.add_argument("--quick", action="store_true", help="60 frames of crossing and exits")
    args = ap.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    inputs = [s for s in args.inputs.split(",") if s]
    if args.quick:
        scenarios, args.frames = ["crossing", "exits"], 60
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
    for s in inputs:
        if s not in INPUTS:
            ap.error(f"unknown input {s!r}; choose from {', '.join(INPUTS)}")

    trackers = te.available_trackers()
    if not trackers:
        print("edgeseg.tracking is not importable: nothing to benchmark", file=sys.stderr)
        return 1
    skipped = []
    if "bytetrack" not in trackers:
        skipped.append("bytetrack, bytetrack-defaults, ocsort (pip install --no-deps trackers supervision)")
    have_metrics = te.metrics_available()
    if not have_metrics:
        skipped.append("HOTA, MOTA, IDF1, IDSW (pip install --no-deps trackeval)")
    if any(s.startswith("model") for s in inputs) and _version("onnxruntime") is None:
        inputs = [s for s in inputs if not s.startswith("model")]
        skipped.append("the model input (pip install edgeseg[onnx])")
    versions = {d: _version(d) for d in ("numpy", "trackeval", "trackers", "supervision", "onnxruntime")}
    print("versions: " + ", ".join(f"{d} {v}" for d, v in versions.items() if v))
    for s in skipped:
        print(f"skipped: {s}")
    print(
        "time: median over frames of one tracker update, inputs prebuilt (ours: edgeseg Detections with masks, "
        "theirs: supervision Detections, boxes only); metrics in %, class-agnostic, box IoU"
    )

    summary: dict[tuple[str, str, str], dict] = {}
    for name in scenarios:
        clip = tracking_clip(name, seed=args.seed, n_frames=args.frames)
        n_gt = sum(len(g) for g in clip.gt)
        for source in inputs:
            t0 = time.perf_counter()
            if source.startswith("model"):
                agnostic = source == "model-any"
                dets = te.model_detections(clip, conf=args.conf, agnostic_nms=agnostic)
                label = f"demo model, conf {args.conf:g}, NMS {'across classes' if agnostic else 'per class'}"
            else:
                dets = te.noisy_detections(clip, seed=args.seed)
                label = f"noisy ground truth, seed {args.seed}"
            prep_s = time.perf_counter() - t0
            prebuilt = te.to_supervision(dets) if "bytetrack" in trackers else None
            print(
                f"\n{name}: {clip.n_frames} frames, {len(clip.objects)} objects, {n_gt} ground-truth boxes; input "
                f"{label}: {sum(len(d) for d in dets)} detections ({prep_s:.1f} s to make)"
            )
            print(
                f"  {'tracker':<20}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'MOTA':>7}{'IDF1':>7}{'IDSW':>6}{'update us':>11}"
            )
            for tracker in trackers:
                run = te.run_tracker(tracker, dets, prebuilt)
                m = te.evaluate(clip, run) if have_metrics else None
                summary[(name, source, tracker)] = {"m": m, "us": run.median_us, "clip": clip, "run": run}
                print(
                    f"  {tracker:<20}{_fmt(m, 'HOTA'):>7}{_fmt(m, 'DetA'):>7}{_fmt(m, 'AssA'):>7}{_fmt(m, 'MOTA'):>7}"
                    f"{_fmt(m, 'IDF1'):>7}{_fmt(m, 'IDSW', pct=False):>6}{run.median_us:>11.0f}"
                )

    if "bytetrack" not in trackers:
        return 0
    print(
        "\nsummary: ours vs ByteTrack (trackers, our thresholds) on the same detections; ours is `ours` (class-"
        "consistent tracks) for the per-class inputs and `ours-run` (edgeseg run --track) for model-any"
    )
    print(
        f"  {'scenario':<11}{'input':<10}{'HOTA ours/BT':>15}{'IDF1 ours/BT':>15}{'IDSW ours/BT':>14}{'BT us / ours us':>17}"
    )
    ratios = []
    for name in scenarios:
        for source in inputs:
            a, b = summary[(name, source, _ours_for(source))], summary[(name, source, "bytetrack")]
            ratio = b["us"] / a["us"]
            ratios.append(ratio)
            if have_metrics:
                ma, mb = a["m"], b["m"]
                hota = f"{100 * ma['HOTA']:.1f}/{100 * mb['HOTA']:.1f}"
                idf1 = f"{100 * ma['IDF1']:.1f}/{100 * mb['IDF1']:.1f}"
                idsw = f"{ma['IDSW']}/{mb['IDSW']}"
            else:
                hota = idf1 = idsw = "-"
            print(f"  {name:<11}{source:<10}{hota:>15}{idf1:>15}{idsw:>14}{ratio:>16.1f}x")
    if have_metrics:
        print(f"  all {len(scenarios)} scenarios combined (TrackEval's sequence combination):")
        for source in inputs:
            both = []
            for tracker in (_ours_for(source), "bytetrack"):
                cells = [summary[(n, source, tracker)] for n in scenarios]
                both.append(te.evaluate_sequences([(c["clip"], c["run"]) for c in cells]))
            a, b = both
            print(
                f"  {source}: HOTA {100 * a['HOTA']:.1f} vs {100 * b['HOTA']:.1f} ({100 * (a['HOTA'] - b['HOTA']):+.1f}), "
                f"IDF1 {100 * a['IDF1']:.1f} vs {100 * b['IDF1']:.1f} ({100 * (a['IDF1'] - b['IDF1']):+.1f}), "
                f"ID switches {a['IDSW']} vs {b['IDSW']}"
            )
    print(f"  update time: ByteTrack takes {statistics.median(ratios):.1f}x ours (median over scenario x input)")
    return 0


def _ours_for(source: str) -> str:
    """Our configuration for an input: across-class NMS goes with tracks that follow a class change."""
    return "ours-run" if source == "model-any" else "ours"


if __name__ == "__main__":
    sys.exit(main())
