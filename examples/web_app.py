"""A small web app with only the standard library: the live annotated preview and per-source counts.

    python examples/web_app.py --model yolov8n-seg.onnx --source rtsp://camera.local/stream
    # then open http://127.0.0.1:8080/

``segmenter.stream(sources)`` runs on a thread; each result is drawn, JPEG-encoded (``cv2.imencode``) and kept
as the newest frame of its source. The server (``http.server.ThreadingHTTPServer``, a thread per client) has:

- ``/``: a page with each source's preview and its counts;
- ``/stream.mjpg?source=K``: source K's annotated frames as MJPEG (``multipart/x-mixed-replace``, what an
  ``<img>`` tag plays); a slow client only skips frames, it never holds the model back;
- ``/stats``: JSON: per source its name, frames, FPS, objects and classes in the newest frame, latency.

It binds 127.0.0.1 unless ``--host`` says otherwise: there is no login, so put it behind a reverse proxy with
authentication before opening it to a network (``--host 0.0.0.0``). Ctrl-C or SIGTERM stop it; it stops by
itself ``--linger`` seconds after the sources end or ``--max-frames`` is reached. Without ``--source`` it runs
the generated demo clip with the built-in demo model (``--port 0`` picks a free port and prints it):

    python examples/web_app.py --port 0 --max-frames 100
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import cv2

from edgeseg import Segmenter
from edgeseg.annotate import draw
from edgeseg.sources import LiveOptions

BOUNDARY = b"edgeseg-frame"


class Preview:
    """The newest JPEG and the counts of each source, written by the inference thread, read by the handlers."""

    def __init__(self, names: list[str], quality: int) -> None:
        self.quality = quality
        self.cond = threading.Condition()
        self.stopping = threading.Event()  # Ctrl-C, SIGTERM: everything stops
        self.running = True  # False once the inference thread has ended
        self.stop_reason: str | None = None
        self.ended_at = 0.0
        self.total = 0
        self.jpegs: list[bytes | None] = [None] * len(names)
        self.seq = [0] * len(names)  # frames published per source (an MJPEG client waits for a higher one)
        self.sources = [
            {"source": name, "frames": 0, "fps": 0.0, "objects": 0, "classes": {}, "latency_ms": None} for name in names
        ]
        self.times: list[deque[float]] = [deque(maxlen=30) for _ in names]

    def publish(self, result: Any) -> None:
        ok, jpeg = cv2.imencode(".jpg", draw(result.image, result.detections), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        k = result.source_id
        now = time.perf_counter()
        with self.cond:
            times = self.times[k]
            times.append(now)
            stats = self.sources[k]
            stats["source"] = result.source
            stats["frames"] += 1
            stats["fps"] = round((len(times) - 1) / (times[-1] - times[0]), 2) if len(times) > 1 else 0.0
            stats["objects"] = len(result.detections)
            stats["classes"] = dict(Counter(result.detections.class_names))
            stats["latency_ms"] = round(result.latency_ms, 1)
            if ok:
                self.jpegs[k] = jpeg.tobytes()
                self.seq[k] += 1
            self.total += 1
            self.cond.notify_all()

    def finish(self, reason: str) -> None:
        with self.cond:
            self.running = False
            self.stop_reason = reason
            self.ended_at = time.monotonic()
            self.cond.notify_all()

    def next_frame(self, k: int, after: int, timeout: float) -> tuple[int, bytes] | None:
        """Source ``k``'s newest JPEG once it is newer than number ``after``; None on timeout or at the end."""
        with self.cond:
            self.cond.wait_for(lambda: self.seq[k] > after or not self.running, timeout)
            jpeg = self.jpegs[k]
            if self.seq[k] > after and jpeg is not None:
                return self.seq[k], jpeg
            return None

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            return {
                "running": self.running,
                "stop_reason": self.stop_reason,
                "frames": self.total,
                "sources": [dict(s) for s in self.sources],
            }


def page(n_sources: int) -> bytes:
    previews = "\n".join(
        f'<figure><img src="/stream.mjpg?source={k}" alt="source {k}"><figcaption id="s{k}"></figcaption></figure>'
        for k in range(n_sources)
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>edgeseg</title>
<style>body{{font-family:sans-serif;margin:1em}} figure{{display:inline-block;margin:0 1em 1em 0}}
img{{max-width:48vw;background:#222}} figcaption{{font-family:monospace}}</style></head>
<body><h1>edgeseg live</h1>
{previews}
<p id="state"></p>
<script>
async function update() {{
  try {{
    const stats = await (await fetch("/stats")).json();
    stats.sources.forEach((s, k) => {{
      const classes = Object.entries(s.classes).map(([c, n]) => n + " " + c).join(", ") || "nothing";
      document.getElementById("s" + k).textContent =
        s.source + ": frame " + s.frames + ", " + s.fps + " FPS, " + classes + ", " + s.latency_ms + " ms";
    }});
    document.getElementById("state").textContent = stats.running ? "" : "stopped: " + stats.stop_reason;
  }} catch (e) {{}}
}}
setInterval(update, 1000); update();
</script></body></html>
""".encode()


def make_handler(preview: Preview, n_sources: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server calls
            url = urlparse(self.path)
            if url.path == "/":
                self.reply(200, "text/html; charset=utf-8", page(n_sources))
            elif url.path == "/stats":
                self.reply(200, "application/json", json.dumps(preview.snapshot()).encode())
            elif url.path == "/stream.mjpg":
                try:
                    k = int(parse_qs(url.query).get("source", ["0"])[0])
                except ValueError:
                    k = -1
                if not 0 <= k < n_sources:
                    self.reply(404, "text/plain", f"no source {k}; there are {n_sources}\n".encode())
                else:
                    self.mjpeg(k)
            else:
                self.reply(404, "text/plain", b"not found\n")

        def reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def mjpeg(self, k: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seq = 0
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client went away
                while not preview.stopping.is_set():
                    newest = preview.next_frame(k, seq, timeout=1.0)
                    if newest is None:
                        if not preview.running:
                            return  # no newer frame will come
                        continue
                    seq, jpeg = newest
                    head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY, len(jpeg))
                    self.wfile.write(head + jpeg + b"\r\n")
                    self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
            pass  # one line per request would drown the output

    return Handler


def infer(segmenter: Segmenter, sources: list[str], options: LiveOptions, preview: Preview, max_frames: int | None):
    reason = "the sources ended"
    try:
        with contextlib.closing(segmenter.stream(sources, live=options)) as results:
            for result in results:
                preview.publish(result)
                if preview.stopping.is_set():
                    reason = "stopped"
                    break
                if max_frames and preview.total >= max_frames:
                    reason = f"--max-frames {max_frames} reached"
                    break
    except Exception as exc:  # a source that cannot be opened, a model error: shown in /stats and printed
        reason = f"error: {exc}"
        print(f"web_app.py: {exc}", file=sys.stderr, flush=True)
    finally:
        preview.finish(reason)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file or folder (default: the built-in demo model)")
    parser.add_argument("--source", action="append", help="camera, stream, file or 'demo'; repeat for several")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--conf", type=float, default=0.25, help="minimum confidence (default 0.25)")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality of the preview (default 80)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop the model after N frames")
    parser.add_argument("--linger", type=float, default=0.0, metavar="S", help="serve S s more after the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sources = args.source or ["demo"]
    if args.model:
        model = args.model
    else:
        from edgeseg.assets import demo_model_path

        model = str(demo_model_path())
    segmenter = Segmenter(model, conf=args.conf)
    segmenter.warmup()
    preview = Preview(list(sources), args.quality)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(preview, len(sources)))
    server.daemon_threads = True  # an open MJPEG connection does not keep the process alive
    host, port = server.server_address[:2]
    print(f"{segmenter!r} on {', '.join(sources)}", flush=True)
    print(f"serving on http://{host}:{port}/", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: preview.stopping.set())
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    worker = threading.Thread(
        target=infer, args=(segmenter, sources, LiveOptions(), preview, args.max_frames), name="infer", daemon=True
    )
    worker.start()
    try:
        while not preview.stopping.wait(0.2):
            if not preview.running and time.monotonic() - preview.ended_at >= args.linger:
                break
    except KeyboardInterrupt:
        pass
    preview.stopping.set()
    server.shutdown()
    server.server_close()
    worker.join(timeout=10)
    state = preview.snapshot()
    print(f"stopped ({state['stop_reason'] or 'interrupted'}) after {state['frames']} frame(s)", flush=True)
    for s in state["sources"]:
        print(f"  {s['source']}: {s['frames']} frame(s), last {s['objects']} object(s) {s['classes']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
