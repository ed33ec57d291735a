"""The tracking and counting options of ``edgeseg run`` and ``edgeseg predict`` (``--track``, ``--zone``,
``--line``, ``--zones``) and what they do to each result: one :class:`~edgeseg.tracking.Tracker` and one
:class:`~edgeseg.zones.ZoneSet` per source, events and counts attached to the result for the sinks."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

from .options import TRACK_CONF, positive_float, unit_float

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from numpy.typing import NDArray

    from edgeseg.detections import Detections
    from edgeseg.pipeline import StreamResult
    from edgeseg.tracking import Tracker
    from edgeseg.zones import ZoneSet

DEFAULT_FPS = 30.0  # for the lost buffer in seconds when a source reports no frame rate


def add_tracking_arguments(parser: argparse.ArgumentParser, *, zones: bool = True) -> None:
    group = parser.add_argument_group("tracking and counting")
    group.add_argument(
        "--track",
        action="store_true",
        help="give each object an id that stays with it from frame to frame (ByteTrack-style, in the native core): "
        f"ids drawn and written as tracker_id; the detector's --conf defaults to {TRACK_CONF} (low-score detections "
        "keep tracks alive) and only tracked objects are reported",
    )
    group.add_argument(
        "--track-buffer",
        type=positive_float,
        default=1.0,
        metavar="S",
        help="seconds a lost track waits to be found again before its id is retired (default 1)",
    )
    group.add_argument(
        "--track-masks",
        type=unit_float,
        default=0.5,
        metavar="W",
        help="weight of mask IoU in the association score, 0..1 (default 0.5: where boxes of different objects "
        "overlap, their masks tell them apart; 0: box IoU only)",
    )
    group.add_argument(
        "--track-by-class",
        action="store_true",
        help="keep each class apart: NMS per class and tracks that never change class (for a detector whose "
        "classes can be trusted); by default NMS runs across classes (one box per object) and a track follows "
        "its object when the detector changes its mind about the class",
    )
    if not zones:
        return
    group.add_argument(
        "--zone",
        action="append",
        default=None,
        metavar="SPEC",
        help="a polygon zone 'NAME:X,Y X,Y X,Y ...[@trigger=mask|bottom_center|...,min_overlap=0.5,classes=A,B]': "
        "occupancy per frame (by mask overlap by default), enter/leave events and dwell times; repeatable; "
        "turns on --track",
    )
    group.add_argument(
        "--line",
        action="append",
        default=None,
        metavar="SPEC",
        help="a counting line 'NAME:X1,Y1 X2,Y2[@anchor=center,min_distance=5,classes=A,B]': crossings in (from "
        "the left of START->END to its right, as seen on the image) and out; repeatable; turns on --track",
    )
    group.add_argument(
        "--zones",
        default=None,
        metavar="FILE",
        help="zones and lines from a .json or .yaml file ({zones: [{name, polygon, ...}], lines: [{name, start, "
        "end, ...}]})",
    )


def wants_tracking(args: argparse.Namespace) -> bool:
    """--track, or zones/lines (their events and counts follow tracks)."""
    return bool(
        args.track or getattr(args, "zone", None) or getattr(args, "line", None) or getattr(args, "zones", None)
    )


def make_tracker(args: argparse.Namespace, fps: float | None) -> Tracker:
    from edgeseg.tracking import Tracker

    return Tracker(
        lost_seconds=args.track_buffer,
        frame_rate=fps or DEFAULT_FPS,
        mask_weight=args.track_masks,
        class_consistent=args.track_by_class,
    )


def make_zoneset(args: argparse.Namespace) -> ZoneSet | None:
    """A fresh set of the zones and lines the options name (one per source: each keeps its own tracks), or None."""
    from edgeseg.zones import ZoneSet, load_zones, parse_line, parse_zone

    zones = [parse_zone(text, default_name=f"zone{k + 1}") for k, text in enumerate(args.zone or [])]
    lines = [parse_line(text, default_name=f"line{k + 1}") for k, text in enumerate(args.line or [])]
    if args.zones:
        loaded = load_zones(args.zones)
        zones += loaded.zones
        lines += loaded.lines
    return ZoneSet(zones, lines) if zones or lines else None


@dataclasses.dataclass
class SourceTracking:
    """One source's tracker and zones."""

    tracker: Tracker
    zoneset: ZoneSet | None
    live: bool
    fps: float | None
    ids: set[int] = dataclasses.field(default_factory=set)  # every track id reported

    def track(self, detections: Detections, index: int) -> Detections:
        tracked = self.tracker.update(detections, frame_index=index)
        if tracked.tracker_id is not None:
            self.ids.update(int(i) for i in tracked.tracker_id)
        return tracked

    def time_s(self, result: StreamResult) -> float:
        """Video time for files (frame index / fps), capture time (Unix seconds) for live sources."""
        if not self.live and self.fps:
            return result.index / self.fps
        return result.captured_unix


class Tracking:
    """Per-source trackers and zones for a run; ``apply`` turns a pipeline result into a tracked one."""

    def __init__(self, args: argparse.Namespace, fps: list[float | None], live: list[bool]) -> None:
        self.sources = [
            SourceTracking(make_tracker(args, rate), make_zoneset(args), is_live, rate)
            for rate, is_live in zip(fps, live)
        ]

    def apply(self, result: StreamResult) -> StreamResult:
        """The result with tracked detections (``tracker_id``) and, with zones or lines, ``analytics``:
        ``{"events": [...], "zones": {...}, "lines": {...}}``."""
        state = self.sources[result.source_id]
        detections = state.track(result.detections, result.index)
        analytics: dict[str, Any] | None = None
        if state.zoneset is not None:
            events = state.zoneset.update(detections, state.time_s(result))
            analytics = {"events": events, **state.zoneset.summary()}
        return dataclasses.replace(result, detections=detections, analytics=analytics)

    def draw(self, image: NDArray[np.uint8], source_id: int) -> NDArray[np.uint8]:
        """Zones and lines with their counts drawn over an annotated frame (the frame itself without any)."""
        zoneset = self.sources[source_id].zoneset
        if zoneset is None:
            return image
        from edgeseg.annotate import draw_zones

        return draw_zones(image, zoneset)

    def summary_lines(self, names: list[str]) -> list[str]:
        lines = []
        for name, state in zip(names, self.sources):
            text = f"  {name}: {len(state.ids)} track id(s)"
            if state.zoneset is not None:
                summary = state.zoneset.summary()
                for zone, counts in summary["zones"].items():
                    text += f"; zone {zone}: entered {counts['entered']}, left {counts['left']}"
                for line, counts in summary["lines"].items():
                    text += f"; line {line}: in {counts['in']}, out {counts['out']}"
            lines.append(text)
        return lines
