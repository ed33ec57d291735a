"""Overlapped capture and inference for one or more frame sources, with ordered results.

    from edgeseg import Segmenter
    seg = Segmenter("yolov8n-seg.onnx")
    for result in seg.stream(["rtsp://cam1/stream", "video.mp4"]):
        print(result.source, result.index, len(result.detections), f"{result.latency_ms:.1f} ms")

Threads: one capture thread per source reads frames into that source's small buffer; ``workers`` inference
threads take frames from the buffers (round-robin over the sources) and run a segmenter each; the caller's
thread receives the results, put back in frame order per source. The native core and the inference engines
release the GIL, so capture, pre/post-processing and inference of different frames overlap.

Buffers and drops: a file (or directory, or the demo clip) never drops a frame: its capture thread waits
while its buffer is full, and every frame comes out. A live source (camera, stream) keeps only the newest
``live_buffer`` frames: when the buffer is full the oldest waiting frame is dropped and counted, so latency
stays bounded however slow inference is. A source that ends or dies stops alone; the others go on.

Stopping: leaving the ``for`` loop (``break``, an exception, Ctrl-C), :meth:`Pipeline.stop` or the context
manager stops every thread and releases every source.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any, Protocol, Union

import numpy as np
from numpy.typing import NDArray

from .sources import Frame, FrameSource, LiveOptions, open_source

if TYPE_CHECKING:
    from .detections import Detections
    from .segmenter import Segmenter

__all__ = ["Pipeline", "ResultSink", "SourceStats", "StreamResult", "auto_workers", "close_sinks", "usable_cores"]

SourceSpec = Union[str, int, "PathLike[str]", FrameSource]


class ResultSink(Protocol):
    """Where results go (:mod:`edgeseg.sinks` has video, JSON Lines, image folder and MJPEG preview sinks)."""

    def write(self, result: StreamResult, annotated: NDArray[np.uint8] | None = None) -> None: ...

    def close(self) -> None: ...


_POLL_S = 0.1  # how often waiting threads look at the stop flag


@dataclass(frozen=True)
class StreamResult:
    """One frame and its detections. Times are ``time.perf_counter()`` seconds."""

    image: NDArray[np.uint8]  # the BGR frame as captured
    detections: Detections
    source: str  # the source's name (URLs without credentials; "name [k]" when two sources share a name)
    source_id: int  # the source's position in the list given to the pipeline
    index: int  # frame number within the source (gaps are dropped frames of a live source)
    captured: float  # when the frame was read
    finished: float  # when its detections were ready
    # what was made of the detections after the pipeline (tracking, zones and lines: events, counts), JSON-friendly;
    # sinks write it beside the detections
    analytics: dict[str, Any] | None = None

    @property
    def captured_unix(self) -> float:
        """When the frame was read, in Unix seconds."""
        return time.time() - (time.perf_counter() - self.captured)

    @property
    def latency_ms(self) -> float:
        """Capture to result, in milliseconds."""
        return (self.finished - self.captured) * 1e3


@dataclass
class SourceStats:
    """What happened to one source's frames."""

    name: str
    live: bool
    fps: float | None = None  # the source's own frame rate, when it reports one
    read: int = 0  # frames read from the source
    dropped: int = 0  # frames a live source dropped because newer ones arrived (never for files)
    reconnects: int = 0  # times a live source was reopened after a loss or a stall
    done: int = 0  # frames whose results came out
    stop_reason: str | None = None  # why the source ended early, if it did
    latencies_ms: list[float] = field(default_factory=list)

    def latency(self) -> tuple[float, float] | None:
        """(median, p95) capture-to-result latency in ms, None before the first result."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        return statistics.median(ordered), p95


@dataclass
class _Buffer:
    """One source's frames waiting for a worker, and the numbering that puts its results back in order."""

    source: FrameSource
    stats: SourceStats
    capacity: int
    frames: deque[tuple[Frame, float]] = field(default_factory=deque)
    ended: bool = False
    taken: int = 0  # frames handed to workers (their order number is the sequence)
    dropped: int = 0  # frames dropped from this buffer (the source's reader drops more: source.dropped)


def close_sinks(sinks: Sequence[ResultSink]) -> None:
    """Close every sink (a video is finished and playable, a JSON Lines file flushed), then raise the first
    error, if any (a full disk)."""
    error: Exception | None = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as exc:
            error = error or exc
    if error is not None:
        raise error


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def auto_workers(segmenter: Segmenter) -> int:
    """The backend's suggested number of requests in flight (OpenVINO's optimal number under its throughput
    hint; 1 for engines whose one request already uses every core), at most the cores this process may use."""
    return max(1, min(int(segmenter.backend.suggested_workers), usable_cores()))


class Pipeline:
    """Capture from ``sources`` and segment the frames on ``workers`` threads; iterate for ordered results.

    Args:
        segmenter: the model; workers beyond the first get their own copy (:meth:`Segmenter.replicate`).
            A list of segmenters gives one worker each (``workers`` is then their number).
        sources: one source or a list: paths, camera indices, URLs, ``"demo"`` (see
            :func:`edgeseg.sources.open_source`) or open :class:`~edgeseg.sources.FrameSource` objects.
        workers: inference threads, each with one request in flight (default: :func:`auto_workers`).
        live_buffer: newest frames a live source keeps waiting (1 = always the newest frame).
        file_buffer: frames a file source reads ahead.
        read_timeout: seconds without a frame after which a live source counts as stalled and is reopened
            (a shortcut for that field of ``live``).
        live: how live sources are opened and kept alive (reconnect attempts, backoff, RTSP transport,
            camera size/fps/FOURCC): :class:`edgeseg.sources.LiveOptions`.
        sinks: each result is written to each of them (in the iterating thread, in order) before it is yielded;
            they are closed when the pipeline stops (a video is then playable, a JSON Lines file complete).
    """

    def __init__(
        self,
        segmenter: Segmenter | Sequence[Segmenter],
        sources: SourceSpec | Sequence[SourceSpec],
        *,
        workers: int | None = None,
        live_buffer: int = 1,
        file_buffer: int = 4,
        read_timeout: float | None = None,
        live: LiveOptions | None = None,
        sinks: Sequence[ResultSink] = (),
    ) -> None:
        given: list[Segmenter] = list(segmenter) if isinstance(segmenter, (list, tuple)) else [segmenter]  # type: ignore[list-item]
        if not given:
            raise ValueError("no segmenter given")
        if workers is None:
            workers = len(given) if len(given) > 1 else auto_workers(given[0])
        for name, value in (("workers", workers), ("live_buffer", live_buffer), ("file_buffer", file_buffer)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if len(given) > 1 and workers != len(given):
            raise ValueError(f"workers={workers} but {len(given)} segmenters were given (one per worker)")
        specs: list[SourceSpec] = list(sources) if isinstance(sources, (list, tuple)) else [sources]  # type: ignore[list-item]
        if not specs:
            raise ValueError("no sources given")
        self._segmenters = given + [given[0].replicate() for _ in range(workers - len(given))]
        self.workers = len(self._segmenters)
        self._buffers: list[_Buffer] = []
        try:
            for spec in specs:
                source = (
                    spec if isinstance(spec, FrameSource) else open_source(spec, read_timeout=read_timeout, live=live)
                )
                name = source.name or (source.kind if isinstance(spec, FrameSource) else str(spec))
                is_live = bool(source.is_live)
                stats = SourceStats(name=str(name), live=is_live, fps=source.fps)
                self._buffers.append(_Buffer(source, stats, live_buffer if is_live else file_buffer))
        except BaseException:
            self._close_sources()
            raise
        names = [b.stats.name for b in self._buffers]
        for k, buf in enumerate(self._buffers):
            if names.count(buf.stats.name) > 1:
                buf.stats.name = f"{buf.stats.name} [{k}]"
        self._cv = threading.Condition()
        self._stopping = False
        self._results: queue.Queue[tuple[int, int, StreamResult] | BaseException] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._capture_threads: list[threading.Thread] = []  # by source position
        self._started = False
        self._next_source = 0
        self._sinks = list(sinks)

    # ---- public -----------------------------------------------------------------------------------

    @property
    def stats(self) -> list[SourceStats]:
        """Per-source figures, in the order the sources were given."""
        return [b.stats for b in self._buffers]

    def __iter__(self) -> Iterator[StreamResult]:
        if self._started:
            raise RuntimeError("a Pipeline can be iterated only once")
        self._start()
        pending: list[dict[int, StreamResult]] = [{} for _ in self._buffers]
        next_seq = [0] * len(self._buffers)
        try:
            while True:
                try:
                    item = self._results.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._finished(next_seq):
                        return
                    continue
                if isinstance(item, BaseException):
                    raise item
                sid, seq, result = item
                pending[sid][seq] = result
                while next_seq[sid] in pending[sid]:
                    ready = pending[sid].pop(next_seq[sid])
                    next_seq[sid] += 1
                    stats = self._buffers[sid].stats
                    stats.done += 1
                    stats.latencies_ms.append(ready.latency_ms)
                    for sink in self._sinks:
                        sink.write(ready)
                    yield ready
        finally:
            self.stop()

    def run(self, max_frames: int | None = None) -> list[SourceStats]:
        """Run to the end (every source ended), to ``max_frames`` results, or to Ctrl-C or SIGTERM (SIGTERM is
        turned into KeyboardInterrupt while this runs in the main thread and nobody else handles it), writing
        every result to the sinks; then stop, close the sinks and return the per-source figures."""
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
        ):
            raise ValueError(f"max_frames must be a positive int or None, got {max_frames!r}")
        previous = None
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for n, _result in enumerate(self, 1):
                if max_frames is not None and n >= max_frames:
                    break
        except KeyboardInterrupt:
            pass  # a requested stop: the sinks are closed below
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.stop()
        return self.stats

    def stop(self) -> None:
        """Stop every thread and release every source (safe to call more than once).

        A live source is closed at once (its ``close`` only wakes its reader); a file source only after its
        capture thread has ended, since a video capture must not be released while another thread reads it.
        """
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._close_sources(live=True)
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=5.0)
        self._close_sources(live=False)
        sinks, self._sinks = self._sinks, []
        close_sinks(sinks)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- threads ----------------------------------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        self._capture_threads = [
            self._spawn(self._capture, sid, f"edgeseg-capture-{sid}") for sid in range(len(self._buffers))
        ]
        for wid, seg in enumerate(self._segmenters):
            self._spawn(self._work, seg, f"edgeseg-worker-{wid}")

    def _spawn(self, target: object, arg: object, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=(arg,), name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()
        return thread

    def _capture(self, sid: int) -> None:
        buf = self._buffers[sid]
        try:
            for frame in buf.source:
                now = time.perf_counter()
                with self._cv:
                    if self._stopping:
                        return
                    buf.stats.read += 1
                    if buf.stats.live:
                        if len(buf.frames) >= buf.capacity:
                            buf.frames.popleft()
                            buf.dropped += 1
                        buf.stats.dropped = buf.dropped + buf.source.dropped  # here and in the source's reader
                        buf.stats.reconnects = buf.source.reconnects
                    else:
                        while len(buf.frames) >= buf.capacity and not self._stopping:
                            self._cv.wait(_POLL_S)
                        if self._stopping:
                            return
                    buf.frames.append((frame, now))
                    self._cv.notify_all()
        except BaseException as exc:  # a broken source stops alone; the reason is kept
            buf.stats.stop_reason = f"{buf.stats.name}: {exc}"
        finally:
            with self._cv:
                buf.ended = True
                if buf.stats.live:
                    buf.stats.dropped = buf.dropped + buf.source.dropped
                    buf.stats.reconnects = buf.source.reconnects
                if buf.stats.stop_reason is None:
                    buf.stats.stop_reason = buf.source.stop_reason
                self._cv.notify_all()

    def _take(self) -> tuple[int, int, Frame, float] | None:
        """The next frame for a worker (round-robin over the sources), None when all is done."""
        with self._cv:
            while True:
                if self._stopping:
                    return None
                n = len(self._buffers)
                for k in range(n):
                    sid = (self._next_source + k) % n
                    buf = self._buffers[sid]
                    if buf.frames:
                        frame, captured = buf.frames.popleft()
                        seq = buf.taken
                        buf.taken += 1
                        self._next_source = (sid + 1) % n
                        self._cv.notify_all()  # a file's capture thread may wait for room
                        return sid, seq, frame, captured
                if all(b.ended for b in self._buffers):
                    return None
                self._cv.wait(_POLL_S)

    def _work(self, segmenter: Segmenter) -> None:
        try:
            while True:
                task = self._take()
                if task is None:
                    return
                sid, seq, frame, captured = task
                detections = segmenter.predict(frame.image)
                result = StreamResult(
                    image=frame.image,
                    detections=detections,
                    source=self._buffers[sid].stats.name,
                    source_id=sid,
                    index=frame.index,
                    captured=captured,
                    finished=time.perf_counter(),
                )
                self._results.put((sid, seq, result))
        except BaseException as exc:  # the caller's thread raises it (queued before the stop is seen)
            self._results.put(exc)
            with self._cv:
                self._stopping = True
                self._cv.notify_all()

    def _finished(self, emitted: list[int]) -> bool:
        with self._cv:
            if self._stopping:
                return True
            return all(b.ended and not b.frames and emitted[i] == b.taken for i, b in enumerate(self._buffers))

    def _close_sources(self, live: bool | None = None) -> None:
        """Close the sources (only the live or only the other ones when ``live`` is given); a source whose
        capture thread is still running is left to that thread's end."""
        for sid, buf in enumerate(self._buffers):
            if live is not None and buf.stats.live != live:
                continue
            if not buf.stats.live and sid < len(self._capture_threads) and self._capture_threads[sid].is_alive():
                continue
            with contextlib.suppress(Exception):  # closing is best effort; the first error already surfaced
                buf.source.close()
