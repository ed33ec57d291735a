"""The overlapped pipeline (edgeseg.pipeline) with the real built-in demo model on ONNX Runtime: frames of
files all come out, in order, with the serial results; live sources drop the oldest waiting frames and count
them; a broken source stops alone; leaving the loop stops every thread.

The sources here are FrameSource subclasses that hand out generated clip frames (a live one reads as fast
as it can, like a camera that never waits); RTSP/HTTP streams come with the stream tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from edgeseg import Segmenter
from edgeseg.assets import demo_model_path
from edgeseg.pipeline import Pipeline
from edgeseg.sources import Frame, FrameSource
from edgeseg.synthetic.clip import iter_clip_frames


class ClipSource(FrameSource):
    """``n`` generated frames (a file-like source unless ``live``); ``fail_at`` raises at that frame."""

    def __init__(self, n: int | None, name: str, *, live: bool = False, seed: int = 0, fail_at: int | None = None):
        self.n, self.name, self.is_live, self.seed, self.fail_at = n, name, live, seed, fail_at
        self.closed = False
        self.frames = list(iter_clip_frames(min(n or 8, 8), size=(320, 192), seed=seed))

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while (self.n is None or index < self.n) and not self.closed:
            if index == self.fail_at:
                raise RuntimeError(f"{self.name} broke at frame {index}")
            yield Frame(self.frames[index % len(self.frames)], self.name, index)
            index += 1

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def seg():
    return Segmenter(demo_model_path(), conf=0.25)


def _threads() -> list[str]:
    """The pipeline's own threads still alive (other tests' stream readers end on their own time)."""
    return [t.name for t in threading.enumerate() if t.name.startswith(("edgeseg-capture-", "edgeseg-worker-"))]


def test_files_every_frame_in_order_with_the_serial_results(seg):
    a, b = ClipSource(20, "a", seed=1), ClipSource(13, "b", seed=2)
    with Pipeline(seg, [a, b], workers=2) as run:
        results = list(run)
    by_source = {name: [r for r in results if r.source == name] for name in ("a", "b")}
    assert [r.index for r in by_source["a"]] == list(range(20))
    assert [r.index for r in by_source["b"]] == list(range(13))
    for stats, n in zip(run.stats, (20, 13)):
        assert (stats.read, stats.done, stats.dropped, stats.stop_reason) == (n, n, 0, None)
        median, p95 = stats.latency()
        assert 0 < median <= p95
    for r in by_source["a"][:8] + by_source["b"][:8]:
        serial = seg.predict(r.image)
        np.testing.assert_allclose(r.detections.xyxy, serial.xyxy, atol=1e-4)
        np.testing.assert_array_equal(r.detections.class_id, serial.class_id)
        assert r.finished >= r.captured and r.latency_ms >= 0
    assert sum(len(r.detections) for r in results) > 0  # the demo model finds the shapes
    assert _threads() == []


def test_stream_api_yields_results_and_stops(seg):
    results = list(seg.stream(ClipSource(6, "clip")))
    assert [(r.source, r.index) for r in results] == [("clip", i) for i in range(6)]
    assert _threads() == []


def test_live_source_keeps_the_newest_frames_and_counts_the_dropped(seg):
    live = ClipSource(150, "camera", live=True)
    with Pipeline(seg, live, live_buffer=1) as run:
        indices = [r.index for r in run]
    stats = run.stats[0]
    assert stats.read == 150 and stats.dropped > 0
    assert stats.read == stats.done + stats.dropped == len(indices) + stats.dropped
    assert indices == sorted(set(indices)) and indices[-1] == 149  # in order, and the newest frame came out


def test_a_broken_source_stops_alone(seg):
    good, bad = ClipSource(12, "good"), ClipSource(30, "bad", fail_at=5)
    with Pipeline(seg, [bad, good]) as run:
        results = list(run)
    assert [r.index for r in results if r.source == "good"] == list(range(12))
    assert [r.index for r in results if r.source == "bad"] == list(range(5))
    assert "bad broke at frame 5" in run.stats[0].stop_reason and run.stats[1].stop_reason is None


def test_leaving_the_loop_stops_threads_and_closes_sources(seg):
    endless = ClipSource(None, "endless", live=True)
    t0 = time.perf_counter()
    for n, _result in enumerate(seg.stream([endless, ClipSource(None, "file")]), 1):
        if n == 5:
            break
    assert endless.closed
    assert time.perf_counter() - t0 < 30
    deadline = time.time() + 5
    while _threads() and time.time() < deadline:
        time.sleep(0.05)
    assert _threads() == []


def test_a_model_error_reaches_the_caller(seg):
    class BadFrames(ClipSource):
        def __iter__(self) -> Iterator[Frame]:
            yield Frame(np.zeros((10, 10, 7), np.uint8), self.name, 0)

    with pytest.raises(ValueError, match="channels"):
        list(Pipeline(seg, BadFrames(1, "bad")))
    assert _threads() == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"workers": 0}, "workers"), ({"live_buffer": True}, "live_buffer"), ({"file_buffer": 1.5}, "file_buffer")],
)
def test_bad_options(seg, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Pipeline(seg, ClipSource(1, "x"), **kwargs)


def test_no_sources_and_iterating_twice(seg):
    with pytest.raises(ValueError, match="no sources"):
        Pipeline(seg, [])
    run = Pipeline(seg, ClipSource(2, "x"))
    assert len(list(run)) == 2
    with pytest.raises(RuntimeError, match="only once"):
        list(run)


def test_replicate_has_its_own_backend(seg):
    twin = seg.replicate()
    assert twin.backend is not seg.backend and twin.conf == seg.conf and twin.names == seg.names


# ---- edgeseg run on the pipeline (the built-in demo model on the generated clip: offline) -------------------


def _frames_in(path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_run_two_sources_two_workers_saves_one_video_each(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out.mp4"
    args = ["run", "--source", "demo", "--source", "demo", "--workers", "2", "--max-frames", "30", "--save", str(out)]
    proc = subprocess.run([sys.executable, "-m", "edgeseg", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = [line for line in proc.stdout.splitlines() if line.startswith("summary:")]
    assert summary and "30 frame(s)" in summary[0] and "latency median" in summary[0]
    assert "demo [0]:" in proc.stdout and "demo [1]:" in proc.stdout
    counts = [_frames_in(tmp_path / f"out_{k}.mp4") for k in (0, 1)]
    assert sum(counts) == 30 and min(counts) > 0


def test_sigterm_during_save_leaves_a_playable_video(tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "live.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeseg", "run", "--source", "demo", "--save", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("edgeseg run: no --model given")
        assert proc.stdout.readline().startswith("edgeseg run:")  # the loop is starting
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "terminated (SIGTERM)" in stdout and "Traceback" not in stderr
    saved = int(stdout.split("saved ")[1].split(" frame")[0])
    assert 0 < saved < 180 and _frames_in(out) == saved


def test_one_worker_per_given_segmenter(seg):
    twin = seg.replicate()
    with Pipeline([seg, twin], ClipSource(9, "clip")) as run:
        assert [r.index for r in run] == list(range(9))
    with pytest.raises(ValueError, match="one per worker"):
        Pipeline([seg, twin], ClipSource(1, "x"), workers=3)
    with pytest.raises(ValueError, match="no segmenter"):
        Pipeline([], ClipSource(1, "x"))


def test_run_writes_one_json_line_per_frame(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "frames.jsonl"
    args = ["run", "--source", "demo", "--max-frames", "12", "--json", str(out)]
    proc = subprocess.run([sys.executable, "-m", "edgeseg", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["source"], r["source_id"], r["frame"]) for r in records] == [("demo", 0, i) for i in range(12)]
    assert all(r["latency_ms"] >= 0 and r["time"] > 1.7e9 and r["image_shape"] == [360, 640] for r in records)
    rows = [row for r in records for row in r["detections"]]
    assert rows and {"class_id", "name", "confidence", "box", "polygons"} <= set(rows[0])
    assert {row["name"] for row in rows} <= {"circle", "square", "triangle", "star"}


def test_pipeline_with_sinks_runs_to_max_frames_and_closes_them(seg, tmp_path):
    from edgeseg.sinks import JsonLinesSink, VideoSink

    video, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    pipeline = Pipeline(seg, "demo", sinks=[VideoSink(video, 30.0), JsonLinesSink(lines)])
    stats = pipeline.run(max_frames=20)
    assert stats[0].done == 20
    assert _frames_in(video) == 20
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(20))
    with pytest.raises(ValueError, match="max_frames"):
        Pipeline(seg, "demo").run(max_frames=0)


_RUN_UNTIL_SIGTERM = """
import sys
from edgeseg import Segmenter
from edgeseg.assets import demo_model_path
from edgeseg.pipeline import Pipeline
from edgeseg.sinks import JsonLinesSink, VideoSink
from edgeseg.sources.files import DemoSource

out = sys.argv[1]
sinks = [VideoSink(out + ".mp4", 30.0), JsonLinesSink(out + ".jsonl")]
stats = Pipeline(Segmenter(demo_model_path()), DemoSource(n_frames=100_000), sinks=sinks).run()
print("stopped after", stats[0].done, "frames", flush=True)
"""


def test_pipeline_run_stops_cleanly_on_sigterm(tmp_path):
    """The embedding API: Pipeline.run() with sinks, SIGTERM mid-run: exit 0, the MP4 plays, the lines parse."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _RUN_UNTIL_SIGTERM, str(out)], stdout=subprocess.PIPE, text=True)
    lines = out.with_suffix(".jsonl")
    deadline = time.monotonic() + 120
    while not (lines.exists() and len(lines.read_text().splitlines()) >= 10):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended or hung before 10 frames"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped after" in output
    done = int(output.split("stopped after")[1].split()[0])
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(records) == done or len(records) == done - 1  # a signal may fall between the two sinks' writes
    assert _frames_in(out.with_suffix(".mp4")) in (done, done - 1) and done >= 10
