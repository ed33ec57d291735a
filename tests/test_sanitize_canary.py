"""The canary of .ci/sanitize: under the sanitizer run (ASan preloaded), a real heap overflow in a child process must
be reported and must fail it, so that a sanitizer run that would miss reports cannot pass silently. Outside that
run (no ASan in the process) it skips."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest


def _asan_loaded() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "__asan_init")
    except OSError:
        return False


@pytest.mark.skipif(not _asan_loaded(), reason="only under .ci/sanitize (AddressSanitizer preloaded)")
def test_a_heap_overflow_is_reported_and_fails_the_process(tmp_path):
    child = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.malloc.restype = ctypes.c_void_p\n"
        "p = libc.malloc(16)\n"
        "ctypes.string_at(p, 17)  # memcpy of 17 bytes from a 16-byte block: ASan's interceptor reports it\n"
    )
    env = dict(os.environ, ASAN_OPTIONS=f"detect_leaks=0:abort_on_error=1:log_path={tmp_path / 'canary'}")
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    reports = list(tmp_path.glob("canary*"))
    assert reports and "heap-buffer-overflow" in reports[0].read_text()
