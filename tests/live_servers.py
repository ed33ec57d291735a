"""Real stream servers on 127.0.0.1 that the live-stream tests start, kill and restart.

- :class:`RtspServer`: GStreamer's gst-rtsp-server (tests/servers/rtsp_server.py) under an interpreter that has
  PyGObject and GstRtspServer (this one, or the system's /usr/bin/python3 with python3-gi).
- :class:`HttpStream`: ffmpeg serving a live MPEG-TS test pattern over HTTP (``-listen 1``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

SERVER_SCRIPT = Path(__file__).parent / "servers" / "rtsp_server.py"
_PROBE = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rtsp_python() -> str | None:
    """An interpreter that can run the RTSP server, or None."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if Path(candidate).exists():
            probe = subprocess.run([candidate, "-c", _PROBE], capture_output=True, timeout=60)
            if probe.returncode == 0:
                return candidate
    return None


def _listening(port: int) -> bool:
    """Whether a socket listens on the port, read from /proc/net/tcp (connecting would use up ffmpeg's one
    client of -listen 1)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A":
                return True
    return False


def _wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class _Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self, width: int, height: int) -> list[str]:
        raise NotImplementedError

    def start(self, width: int = 320, height: int = 240) -> None:
        self.process = subprocess.Popen(
            self._command(width, height), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        self._ready()

    def _ready(self) -> None:
        _wait_listening(self.port)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class RtspServer(_Server):
    def __init__(self, python: str) -> None:
        super().__init__()
        self.python = python
        self.url = f"rtsp://127.0.0.1:{self.port}/live"

    def _command(self, width: int, height: int) -> list[str]:
        return [self.python, str(SERVER_SCRIPT), str(self.port), str(width), str(height), "15"]

    def _ready(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError(f"the RTSP server did not start (said {line!r})")


class HttpStream(_Server):
    """ffmpeg -listen 1 serves one client, then exits when that client goes: a reconnect needs a restart, as
    with a camera that reboots."""

    def __init__(self) -> None:
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}/live.ts"

    def _command(self, width: int, height: int) -> list[str]:
        return [
            shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate=15",
            "-c:v", "mpeg2video", "-q:v", "5", "-g", "15", "-f", "mpegts", "-listen", "1", self.url,
        ]  # fmt: skip
