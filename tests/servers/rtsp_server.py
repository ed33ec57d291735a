"""A real RTSP server on 127.0.0.1 for the live-stream tests: GStreamer's gst-rtsp-server (Debian's
gstreamer1.0-rtsp + gir1.2-gst-rtsp-server-1.0), serving a live H.264 test pattern at rtsp://127.0.0.1:PORT/live.

    python3 tests/servers/rtsp_server.py PORT [WIDTH HEIGHT FPS]

Prints "ready" once it listens; runs until killed. It needs PyGObject (the system python3 has it as python3-gi).
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1]
width, height, fps = (int(v) for v in (sys.argv[2:5] if len(sys.argv) >= 5 else (320, 240, 15)))
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
    f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! rtph264pay name=pay0 pt=96 "
    "config-interval=1 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/live", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
