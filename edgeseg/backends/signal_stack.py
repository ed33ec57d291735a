"""Guard a thread's alternate signal stack against OpenVINO (Linux).

OpenVINO's CPU plugin (seen with 2026.4) gives the calling thread a new alternate signal stack
(``sigaltstack``) when it compiles a model, and puts back the one it saw when that compiled model goes
away. With two compiled models released in creation order (A, B, then A freed, then B), B puts back
A's stack, which is freed memory by then. The next signal handled on that stack (any Python handler:
Python installs them with ``SA_ONSTACK``; torch's DataLoader installs one for SIGCHLD, so a finished
subprocess is enough) kills the process with SIGSEGV.

:func:`preserve_sigaltstack` puts the thread's own alternate stack back right after OpenVINO worked, so
every compiled model remembers that one (always valid) and the thread never runs on a stack OpenVINO
can free. OpenVINO works without its own alternate stack. A no-op off Linux or where libc cannot be
reached.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["current_sigaltstack", "preserve_sigaltstack"]

_SS_DISABLE = 2  # Linux, every architecture


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sigaltstack  # noqa: B018 - present in every Linux libc; missing means "do nothing"
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def current_sigaltstack() -> tuple[int, int, int] | None:
    """``(address, size, flags)`` of this thread's alternate signal stack, None where unsupported."""
    if _LIBC is None:
        return None
    now = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(now)) != 0:
        return None
    return (now.ss_sp or 0, int(now.ss_size), int(now.ss_flags))


@contextmanager
def preserve_sigaltstack(collect: bool = False) -> Iterator[None]:
    """Restore this thread's alternate signal stack on exit if the body replaced it.

    ``collect=True`` runs the garbage collector first, so that models compiled and dropped inside the
    body (e.g. by NNCF) are released while their stacks are still the ones they expect.
    """
    if _LIBC is None:
        yield
        return
    saved = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        if collect:
            gc.collect()
        now = _StackT()
        if _LIBC.sigaltstack(None, ctypes.byref(now)) == 0 and (
            (now.ss_sp or 0, now.ss_size, now.ss_flags) != (saved.ss_sp or 0, saved.ss_size, saved.ss_flags)
        ):
            restore = _StackT(saved.ss_sp, _SS_DISABLE if saved.ss_flags & _SS_DISABLE else 0, saved.ss_size)
            _LIBC.sigaltstack(ctypes.byref(restore), None)
