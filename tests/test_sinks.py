"""Sinks (edgeseg.sinks): the annotated video (frames of another size letterboxed, not dropped), JSON Lines
(with COCO RLE masks), event images written atomically and rate-limited, and the live MJPEG preview: read by
HTTP clients as multipart parts, shown by a real headless Chromium (Debian's package), and served by
``edgeseg run --serve``."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from edgeseg.detections import Detections  # noqa: E402
from edgeseg.ops.masks import MaskSet  # noqa: E402
from edgeseg.pipeline import StreamResult  # noqa: E402
from edgeseg.sinks import (  # noqa: E402
    BOUNDARY,
    ImageDirSink,
    JsonLinesSink,
    MjpegServer,
    VideoSink,
    coco_rle,
    safe_name,
)

NAMES = {0: "cat", 1: "dog"}


def _detections(shape: tuple[int, int], instances: list[tuple[int, int, int, np.ndarray]]) -> Detections:
    """Detections of (class id, x0, y0, bitmap) instances in an image of ``shape`` (H, W)."""
    rects, parts, offsets = [], [], [0]
    for _, x0, y0, bitmap in instances:
        h, w = bitmap.shape
        rects.append((x0, y0, x0 + w, y0 + h))
        parts.append(bitmap.astype(np.uint8).reshape(-1))
        offsets.append(offsets[-1] + h * w)
    masks = MaskSet(
        np.array(rects, np.int32).reshape(-1, 4),
        np.concatenate(parts) if parts else np.zeros(0, np.uint8),
        np.array(offsets, np.int64),
        shape,
    )
    return Detections(
        xyxy=np.array(rects, np.float32).reshape(-1, 4),
        confidence=np.linspace(0.9, 0.5, len(instances)).astype(np.float32),
        class_id=np.array([c for c, *_ in instances], np.int32),
        names=NAMES,
        masks=masks,
        image_shape=shape,
    )


def _result(image, detections=None, *, source="cam", source_id=0, index=0, captured=None) -> StreamResult:
    t = time.perf_counter() if captured is None else captured
    if detections is None:
        detections = Detections.empty(NAMES, image_shape=image.shape[:2])
    return StreamResult(image, detections, source, source_id, index, t, t + 0.01)


def _solid(w: int, h: int, bgr: tuple[int, int, int]) -> np.ndarray:
    image = np.empty((h, w, 3), np.uint8)
    image[:] = bgr
    return image


def _disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[: 2 * radius, : 2 * radius]
    return ((yy - radius + 0.5) ** 2 + (xx - radius + 0.5) ** 2 <= radius**2).astype(np.uint8)


def _read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


# ---- video --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_video_letterboxes_frames_of_another_size_and_plays_back(tmp_path, name):
    path = tmp_path / "sub" / name
    with VideoSink(path, fps=10, annotate=False) as video:
        assert not video.opened
        for i in range(4):
            video.write(_result(_solid(160, 120, (0, 200, 0)), index=i))
        for i in range(3):  # the stream came back at 16:9: fitted into 4:3 with bars above and below
            video.write(_result(_solid(320, 180, (200, 0, 0)), index=4 + i))
        video.write(_result(_solid(80, 60, (0, 0, 200)), index=7))  # smaller, same aspect: scaled up
    assert (video.frames, video.resized, video.size) == (8, 4, (160, 120))
    frames = _read_video(path)
    assert len(frames) == 8 and all(f.shape == (120, 160, 3) for f in frames)
    assert np.abs(frames[0][60, 80].astype(int) - (0, 200, 0)).max() < 30
    boxed = frames[5].astype(int)
    assert np.abs(boxed[60, 80] - (200, 0, 0)).max() < 30  # the picture, centred
    assert boxed[:10].max() < 40 and boxed[-10:].max() < 40  # black bars (90 rows tall picture in 120)
    assert np.abs(frames[7][60, 80].astype(int) - (0, 0, 200)).max() < 30
    video.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        video.write(_result(_solid(160, 120, (0, 0, 0))))


def test_video_takes_its_source_only_and_draws_the_detections(tmp_path):
    image = _solid(128, 96, (40, 40, 40))
    dets = _detections((96, 128), [(0, 20, 20, np.ones((40, 40), np.uint8))])
    video = VideoSink(tmp_path / "a.mp4", None, source_id=1)
    assert video.fps == 30.0
    assert not video.wants_annotated(_result(image, dets, source_id=0))
    assert video.wants_annotated(_result(image, dets, source_id=1))
    for k in range(6):
        video.write(_result(image, dets, source_id=k % 2, index=k))
    video.close()
    frames = _read_video(tmp_path / "a.mp4")
    assert len(frames) == video.frames == 3
    assert np.abs(frames[0][40, 40].astype(int) - 40).max() > 20  # the mask is painted


# ---- JSON Lines ---------------------------------------------------------------------------------------------


def _rle_reference(full: np.ndarray) -> list[int]:
    """Column-major run lengths starting with background, the plain way."""
    flat = full.T.reshape(-1).astype(bool)
    counts, current, run = [], False, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return counts


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools under numpy 2
def test_coco_rle_matches_the_full_mask_at_the_edges():
    shape = (30, 40)
    rng = np.random.default_rng(0)
    instances = [
        (0, 0, 0, np.ones((5, 7), np.uint8)),  # the first pixel is set
        (1, 33, 22, np.ones((8, 7), np.uint8)),  # the last pixel is set
        (0, 10, 5, rng.integers(0, 2, (12, 9)).astype(np.uint8)),
        (1, 12, 12, np.zeros((0, 0), np.uint8)),  # an empty box
        (0, 3, 4, np.zeros((3, 3), np.uint8)),  # a box with no pixel set
    ]
    masks = _detections(shape, instances).masks
    full = masks.full()
    for i in range(len(instances)):
        rle = coco_rle(masks, i)
        assert rle["size"] == [30, 40] and sum(rle["counts"]) == 30 * 40
        assert rle["counts"] == _rle_reference(full[i]), i
    with contextlib.suppress(ImportError):
        from pycocotools import mask as mask_utils

        for i in range(len(instances)):
            decoded = mask_utils.decode(mask_utils.frPyObjects(coco_rle(masks, i), 30, 40))
            np.testing.assert_array_equal(decoded.astype(bool), full[i])


def test_json_lines_one_whole_line_per_frame(tmp_path):
    path = tmp_path / "deep" / "frames.jsonl"
    dets = _detections((60, 80), [(0, 10, 10, _disc(8)), (1, 40, 20, np.ones((10, 12), np.uint8))])
    with JsonLinesSink(path, rle=True) as sink:
        for i in range(3):
            sink.write(_result(np.zeros((60, 80, 3), np.uint8), dets, source="cam 1", index=i))
            assert len(path.read_text().splitlines()) == i + 1  # flushed line by line
    assert sink.lines == 3
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["source"], r["source_id"], r["frame"]) for r in records] == [("cam 1", 0, i) for i in range(3)]
    record = records[0]
    assert record["time"] > 1.7e9 and record["latency_ms"] == pytest.approx(10, abs=0.1)
    assert record["image_shape"] == [60, 80]
    rows = record["detections"]
    assert [r["name"] for r in rows] == ["cat", "dog"] and rows[1]["box"] == [40, 20, 52, 30]
    assert len(rows[0]["polygons"]) == 1 and len(rows[0]["polygons"][0]) >= 8
    assert rows[1]["rle"]["counts"] == _rle_reference(dets.masks.full()[1])
    with JsonLinesSink(tmp_path / "plain.jsonl", polygons=None) as plain:
        plain.write(_result(np.zeros((60, 80, 3), np.uint8), dets))
    row = json.loads((tmp_path / "plain.jsonl").read_text())["detections"][0]
    assert set(row) == {"class_id", "name", "confidence", "box"}
    with pytest.raises(ValueError, match="polygons"):
        JsonLinesSink(tmp_path / "x.jsonl", polygons="biggest")


# ---- images on events ---------------------------------------------------------------------------------------


def test_safe_name():
    assert safe_name("rtsp://cam.local:554/live?x=1") == "rtsp_cam.local_554_live_x_1"
    assert safe_name("demo [1]") == "demo_1"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("///") == "source" and len(safe_name("a" * 500)) == 80


def test_image_dir_writes_events_atomically_at_most_once_per_interval(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    image = _solid(80, 60, (90, 90, 90))
    dets = _detections((60, 80), [(0, 5, 5, _disc(6)), (1, 30, 20, np.ones((20, 25), np.uint8))])
    none = Detections.empty(NAMES, image_shape=(60, 80))
    sink = ImageDirSink(tmp_path / "events", min_interval_s=1.0)
    t0 = 1000.0
    plan = [(0.0, dets), (0.5, dets), (0.9, none), (1.0, none), (1.1, dets), (1.5, dets), (2.0, dets), (2.2, dets)]
    for index, (dt, d) in enumerate(plan):
        sink.write(_result(image, d, source="rtsp://cam/1", index=index, captured=t0 + dt))
    # and another source has its own interval
    sink.write(_result(image, dets, source="demo [1]", source_id=1, index=3, captured=t0 + 0.5))
    files = sorted(p.name for p in (tmp_path / "events").iterdir())
    assert files == [
        "demo_1_000003.jpg",
        "demo_1_000003.png",
        "rtsp_cam_1_000000.jpg",
        "rtsp_cam_1_000000.png",
        "rtsp_cam_1_000004.jpg",
        "rtsp_cam_1_000004.png",
        "rtsp_cam_1_000007.jpg",
        "rtsp_cam_1_000007.png",
    ]  # 0.5: too soon; 0.9, 1.0: no detection; 1.5 and 2.0: too soon after 1.1
    assert sink.events == 4 and [p.name for p in sink.written] == ["demo_1_000003.jpg", "demo_1_000003.png"]
    assert all(src.parent == dst.parent and src.name.startswith(".") for src, dst in renames) and len(renames) == 8
    labels = cv2.imread(str(tmp_path / "events" / "rtsp_cam_1_000000.png"), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint8 and labels.shape == (60, 80)
    np.testing.assert_array_equal(labels, dets.masks.label_map())
    assert set(np.unique(labels)) == {0, 1, 2}
    picture = cv2.imread(str(tmp_path / "events" / "rtsp_cam_1_000000.jpg"))
    assert picture.shape == (60, 80, 3) and np.abs(picture[30, 42].astype(int) - 90).max() > 20  # drawn


def test_image_dir_classes_and_always(tmp_path):
    image = _solid(40, 30, (0, 0, 0))
    cats = _detections((30, 40), [(0, 2, 2, np.ones((4, 4), np.uint8))])
    dogs_only = ImageDirSink(tmp_path / "dogs", classes=["dog"], min_interval_s=0)
    for index in range(3):
        assert not dogs_only.wants_annotated(_result(image, cats, index=index))
        dogs_only.write(_result(image, cats, index=index))
    assert dogs_only.events == 0 and list((tmp_path / "dogs").iterdir()) == []
    always = ImageDirSink(tmp_path / "all", every="always", min_interval_s=0)
    for index in range(3):
        always.write(_result(image, index=index))  # no masks: a picture only
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [f"cam_{i:06d}.jpg" for i in range(3)]
    with pytest.raises(ValueError, match="every"):
        ImageDirSink(tmp_path, every="sometimes")


# ---- MJPEG preview ------------------------------------------------------------------------------------------


class _Feeder:
    """A thread writing frames of each given (size, colour) to a sink until stopped."""

    def __init__(self, sink, specs, period=0.04):
        self.sink, self.specs, self.period = sink, specs, period
        self.stop = threading.Event()
        self.written = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        index = 0
        while not self.stop.is_set():
            for sid, ((w, h), colour) in enumerate(self.specs):
                image = _solid(w, h, colour)
                image[0, 0] = index % 256  # every frame differs a little
                self.sink.write(_result(image, source=f"camera {sid}", source_id=sid, index=index))
            self.written += 1
            index += 1
            time.sleep(self.period)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)


def _viewer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("edgeseg-mjpeg")]


def _open_stream(server: MjpegServer, sid: int = 0):
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    conn.request("GET", f"/stream.mjpg?source={sid}")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    return conn, response


def _read_part(response) -> np.ndarray:
    """One multipart part, decoded."""
    line = response.readline()
    assert line == f"--{BOUNDARY}\r\n".encode(), line
    headers = {}
    while (line := response.readline()) not in (b"\r\n", b""):
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    data = response.read(int(headers["content-length"]))
    assert response.read(2) == b"\r\n"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_mjpeg_two_clients_a_leaver_and_close(monkeypatch):
    import edgeseg.sinks as sinks

    encoded = []
    real_encode = sinks._encode
    monkeypatch.setattr(sinks, "_encode", lambda *a: encoded.append(1) or real_encode(*a))
    server = MjpegServer(port=0, sources=["camera 0", "camera 1"])
    assert server.address[0] == "127.0.0.1" and server.address[1] > 0  # localhost unless told otherwise
    assert server.url == f"http://127.0.0.1:{server.address[1]}/"
    feeder = _Feeder(server, [((160, 120), (0, 200, 0)), ((96, 64), (0, 0, 200))])
    try:
        page = urllib.request.urlopen(server.url, timeout=10).read().decode()
        assert '<img src="/stream.mjpg?source=0"' in page and '<img src="/stream.mjpg?source=1"' in page
        assert "camera 0" in page and "camera 1" in page
        snapshot = urllib.request.urlopen(server.url + "snapshot.jpg?source=1", timeout=10)
        assert snapshot.headers["Content-Type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(snapshot.read(), np.uint8), cv2.IMREAD_COLOR).shape == (64, 96, 3)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.url + "stream.mjpg?source=7", timeout=10)
        assert missing.value.code == 404

        conn_a, a = _open_stream(server, 0)
        conn_b, b = _open_stream(server, 1)
        conn_c, c = _open_stream(server, 0)
        first = _read_part(a)
        assert first.shape == (120, 160, 3) and np.abs(first[60, 80].astype(int) - (0, 200, 0)).max() < 30
        assert _read_part(b).shape == (64, 96, 3)
        _read_part(c)
        c.close()  # the third viewer leaves with unread data (its socket is reset)
        conn_c.close()
        for _ in range(15):  # the others go on
            assert _read_part(a).shape == (120, 160, 3)
            assert _read_part(b).shape == (64, 96, 3)
        deadline = time.time() + 10
        while server.viewers != 2 and time.time() < deadline:
            time.sleep(0.05)
        assert server.viewers == 2
        assert len(encoded) <= 2 * feeder.written + 2  # once per frame, not once per viewer
    finally:
        feeder.close()
        t0 = time.perf_counter()
        server.close()
    assert time.perf_counter() - t0 < 5
    assert _viewer_threads() == []
    for response in (a, b):  # the streams end
        with contextlib.suppress(OSError):
            while response.read(65536):
                pass
    for conn in (conn_a, conn_b):
        conn.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)
    server.close()  # twice is fine


def test_mjpeg_a_stalled_client_never_slows_the_writer():
    server = MjpegServer(port=0)
    stalled = socket.create_connection(server.address)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /stream.mjpg?source=0 HTTP/1.0\r\n\r\n")  # and never reads
    try:
        rng = np.random.default_rng(0)
        noise = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]  # ~ 200 kB JPEGs
        slowest = 0.0
        for index in range(150):
            t0 = time.perf_counter()
            server.write(_result(noise[index % 4], index=index))
            slowest = max(slowest, time.perf_counter() - t0)
            time.sleep(0.005)
        assert slowest < 0.25  # a blocked viewer would hold it for its 10 s send timeout
        assert server.viewers == 1
    finally:
        t0 = time.perf_counter()
        server.close()  # wakes the viewer blocked in its send
        stalled.close()
    assert time.perf_counter() - t0 < 5 and _viewer_threads() == []


def test_mjpeg_snapshot_before_any_frame_and_bad_requests():
    server = MjpegServer(port=0, sources=["only"], snapshot_timeout=0.5)
    try:
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(server.url + "snapshot.jpg?source=x", timeout=10)
        assert bad.value.code == 400
        with pytest.raises(urllib.error.HTTPError) as nothing:
            urllib.request.urlopen(server.url + "nothing", timeout=10)
        assert nothing.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as early:
            urllib.request.urlopen(server.url + "snapshot.jpg", timeout=20)
        assert early.value.code == 503  # no frame within snapshot_timeout
        with pytest.raises(OSError, match="cannot serve the preview on 127.0.0.1"):
            MjpegServer(port=server.address[1])  # taken
    finally:
        server.close()


# ---- the preview in a real browser: Debian's Chromium, headless ---------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium or chromium-browser on PATH")


def chromium(url: str, *args: str, timeout: float = 90) -> str:
    """Run headless Chromium on ``url`` for 4 s of virtual time (the MJPEG response never ends: the budget and
    the process timeout bound it); its stdout."""
    with tempfile.TemporaryDirectory() as profile:
        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=4000",
            *args,
            url,
        ]
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"chromium did not finish within {timeout} s")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # helpers it may leave behind
    assert proc.returncode == 0, stderr[-3000:]
    return stdout


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


@needs_chromium
def test_chromium_shows_the_live_preview(tmp_path):
    specs = [((160, 120), (0, 200, 0)), ((200, 100), (0, 0, 220))]  # green, red (BGR)
    server = MjpegServer(port=0, sources=["left cam", "right cam"])
    feeder = _Feeder(server, specs)
    try:
        parser = _Images()
        parser.feed(chromium(server.url, "--dump-dom"))
        sizes = {img["data-source"]: img.get("data-size") for img in parser.images}
        assert sizes == {"0": "160x120", "1": "200x100"}  # the page's script saw the decoded frames
        shot = tmp_path / "shot.png"
        chromium(server.url, f"--screenshot={shot}", "--window-size=800,400")
    finally:
        feeder.close()
        server.close()
    image = cv2.imread(str(shot)).astype(int)
    for (w, h), colour in specs:
        close = (np.abs(image - colour).max(axis=2) < 40).sum()
        assert close > 0.85 * w * h, (colour, close)
    assert _viewer_threads() == []


# ---- edgeseg run --serve / --save-frames ----------------------------------------------------------------------


def _edgeseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeseg", *args]


def test_serve_address_parsing():
    import argparse

    from edgeseg.cli.run import serve_address

    assert serve_address("8080") == ("127.0.0.1", 8080)
    assert serve_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert serve_address("[::1]:0") == ("::1", 0)
    for bad in ("http", ":80", "host:99999", "host:"):
        with pytest.raises(argparse.ArgumentTypeError):
            serve_address(bad)


def test_run_serves_the_preview_and_saves_event_frames(tmp_path):
    pytest.importorskip("onnxruntime")
    events, lines = tmp_path / "events", tmp_path / "frames.jsonl"
    args = ["run", "--source", "demo", "--serve", "127.0.0.1:0", "--max-frames", "30"]
    args += ["--save-frames", str(events), "--save-frames-interval", "0", "--json", str(lines)]
    proc = subprocess.run(_edgeseg(*args), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    url = re.search(r"^preview: (http://127\.0\.0\.1:(\d+)/)$", proc.stdout, re.MULTILINE)
    assert url and int(url.group(2)) > 0
    assert "30 frame(s)" in proc.stdout and "Traceback" not in proc.stderr
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    with_detections = [r["frame"] for r in records if r["detections"]]
    assert len(records) == 30 and with_detections
    names = sorted(p.name for p in events.iterdir())
    assert names == sorted([f"demo_{i:06d}.{ext}" for i in with_detections for ext in ("jpg", "png")])
    assert f"saved {len(with_detections)} event(s) to {events}" in proc.stdout
    labels = cv2.imread(str(events / f"demo_{with_detections[0]:06d}.png"), cv2.IMREAD_UNCHANGED)
    n = len(next(r for r in records if r["frame"] == with_detections[0])["detections"])
    assert labels.shape == (360, 640) and 1 <= labels.max() <= n


def test_run_serve_to_a_viewer_then_sigterm(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "live.mp4"
    proc = subprocess.Popen(
        _edgeseg("run", "--source", "demo", "--serve", "0", "--save", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[2].startswith("preview: http://127.0.0.1:"), lines
        url = lines[2].split()[1]
        snapshot = urllib.request.urlopen(url + "snapshot.jpg", timeout=30).read()
        assert cv2.imdecode(np.frombuffer(snapshot, np.uint8), cv2.IMREAD_COLOR).shape == (360, 640, 3)
        host, port = url[len("http://") : -1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/stream.mjpg")
        response = conn.getresponse()
        assert _read_part(response).shape == (360, 640, 3)
        proc.send_signal(signal.SIGTERM)  # with a viewer connected
        stdout, stderr = proc.communicate(timeout=60)
        with contextlib.suppress(OSError):  # the stream ends with the run
            while response.read(65536):
                pass
        conn.close()
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "terminated (SIGTERM)" in stdout and "Traceback" not in stderr
    saved = int(stdout.split("saved ")[1].split(" frame")[0])
    assert saved > 0 and len(_read_video(out)) == saved
