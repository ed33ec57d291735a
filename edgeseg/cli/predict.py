"""``edgeseg predict``: segment images, directories, globs or videos and save annotated results."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .options import add_model_arguments, make_segmenter
from .tracking import add_tracking_arguments, make_tracker

if TYPE_CHECKING:  # pragma: no cover
    import cv2

    from edgeseg.tracking import Tracker

HELP = "segment images or videos and save annotated copies (and JSON)"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("predict", help=HELP, description=HELP)
    add_model_arguments(parser)
    parser.add_argument("--source", "-s", required=True, help="image, directory, glob pattern or video file")
    parser.add_argument(
        "--save",
        default="runs/predict",
        metavar="DIR",
        help="output directory for annotated images/videos (default runs/predict)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="also write detections (boxes, classes, scores, polygons) as JSON: "
        "NAME.json per image, NAME.jsonl (one line per frame) per video",
    )
    parser.add_argument("--no-masks", action="store_true", help="draw boxes and labels only")
    add_tracking_arguments(parser, zones=False)
    return parser


def run(args: argparse.Namespace) -> int:
    from edgeseg.annotate import draw
    from edgeseg.sources import media_kind, open_source

    args.tracking = args.track
    segmenter = make_segmenter(args)
    save_dir = Path(args.save)
    total = 0
    trackers: dict[Path, Tracker] = {}  # one per video (--track); images are not tracked
    track_ids: dict[Path, set[int]] = {}
    with open_source(args.source) as source:
        if source.is_live:
            raise ValueError("predict works on files; use `edgeseg run` for cameras and streams")
        save_dir.mkdir(parents=True, exist_ok=True)
        outputs = _Outputs(save_dir)
        try:
            for frame in source:
                detections = segmenter(frame.image)
                path = Path(frame.source)
                is_video = media_kind(path) == "video"
                if args.track and is_video:
                    if path not in trackers:
                        trackers[path] = make_tracker(args, source.fps)
                    detections = trackers[path].update(detections)
                    if detections.tracker_id is not None:
                        track_ids.setdefault(path, set()).update(detections.tracker_id.tolist())
                annotated = draw(frame.image, detections, masks=not args.no_masks)
                if is_video:
                    outputs.write_video_frame(path, annotated, source.fps)
                else:
                    outputs.write_image(path, annotated)
                if args.json:
                    record = {"source": str(path), "frame": frame.index, **detections.to_dict()}
                    outputs.write_json(path, record, is_video)
                if not is_video or frame.index % 30 == 0:
                    t = detections.timings
                    where = path.name + (f" frame {frame.index}" if is_video else "")
                    print(
                        f"{where}: {detections.summary()} (pre {t['preprocess']:.1f} ms, "
                        f"inf {t['inference']:.1f} ms, post {t['postprocess']:.1f} ms)"
                    )
                total += 1
        finally:
            outputs.close()
    for path in trackers:
        print(f"{path.name}: {len(track_ids.get(path, ()))} track id(s)")
    print(f"{total} frame(s) processed; results saved to {save_dir}")
    return 0


_IMAGE_WRITE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class _Outputs:
    """Output files of one predict run: unique names, one video writer per input video."""

    def __init__(self, save_dir: Path):
        self.save_dir = save_dir
        self._stems: dict[Path, str] = {}  # input path -> unique output stem
        self._writers: dict[Path, cv2.VideoWriter] = {}
        self._json_files: dict[Path, TextIO] = {}

    def _stem(self, source: Path) -> str:
        if source not in self._stems:
            stem, used, n = source.stem, set(self._stems.values()), 1
            while stem in used:
                stem, n = f"{source.stem}_{n}", n + 1
            self._stems[source] = stem
        return self._stems[source]

    def write_image(self, source: Path, image) -> Path:
        from edgeseg.opencv import require_cv2

        cv2 = require_cv2("writing annotated images")
        suffix = source.suffix.lower() if source.suffix.lower() in _IMAGE_WRITE_SUFFIXES else ".jpg"
        path = self.save_dir / f"{self._stem(source)}{suffix}"
        ok, data = cv2.imencode(suffix, image)
        if not ok:
            raise OSError(f"cannot encode {path}")
        data.tofile(str(path))
        return path

    def write_video_frame(self, source: Path, image, fps) -> None:
        from edgeseg.opencv import require_cv2

        cv2 = require_cv2("writing annotated videos")
        writer = self._writers.get(source)
        if writer is None:
            path = self.save_dir / f"{self._stem(source)}.mp4"
            h, w = image.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps or 30.0, (w, h))
            if not writer.isOpened():
                raise OSError(f"cannot write video {path}")
            self._writers[source] = writer
        writer.write(image)

    def write_json(self, source: Path, record: dict, is_video: bool) -> None:
        if is_video:
            handle = self._json_files.get(source)
            if handle is None:
                handle = open(self.save_dir / f"{self._stem(source)}.jsonl", "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
                self._json_files[source] = handle
            handle.write(json.dumps(record) + "\n")
        else:
            path = self.save_dir / f"{self._stem(source)}.json"
            path.write_text(json.dumps(record, indent=1), encoding="utf-8")

    def close(self) -> None:
        for writer in self._writers.values():
            writer.release()
        for handle in self._json_files.values():
            handle.close()
        self._writers.clear()
        self._json_files.clear()
