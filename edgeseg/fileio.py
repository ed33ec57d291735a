"""Atomic file writes (no torch): readers see the old file or the complete new one, never a partial file.

The data goes to a temporary file in the destination's directory (so the final rename stays on one
filesystem), is flushed and fsync'ed, and then ``os.replace``-d over the destination. If the writer
raises, the temporary file is removed and the destination is left untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Callable, Union

__all__ = ["atomic_path", "atomic_write", "atomic_write_text", "atomic_write_with"]

PathLike = Union[str, "os.PathLike[str]"]


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the platform allows opening a directory (POSIX)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _new_file_mode(target: Path) -> int:
    """The mode a plain ``open(target, "wb")`` would give: keep an existing file's, else 0o666 & ~umask.

    (``mkstemp`` creates 0o600 files.) The umask is read from /proc where possible, since changing it
    to read it back is not thread-safe; elsewhere 0o644 is assumed.
    """
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


@contextmanager
def _staged(path: PathLike, name: str, suffix: str) -> Iterator[tuple[int, Path, Path]]:
    """(open descriptor, temporary path, target) of a new temporary file ``.<name>.*<suffix>`` beside
    ``path``; on a clean exit it is renamed over ``path`` (and the rename made durable), if anything raises
    it is removed."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {target}: directory {directory} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=directory)
    tmp = Path(tmp_name)
    try:
        yield fd, tmp, target
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(directory)


@contextmanager
def atomic_write(path: PathLike) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file; on a clean exit it atomically becomes ``path``."""
    with _staged(path, Path(path).name, ".tmp") as (fd, _, target), os.fdopen(fd, "wb") as fh:
        if os.name == "posix":
            os.fchmod(fh.fileno(), _new_file_mode(target))
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_with(path: PathLike, writer: Callable[[BinaryIO], object]) -> Path:
    """Call ``writer(file)`` inside :func:`atomic_write`; return the destination path."""
    with atomic_write(path) as fh:
        writer(fh)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return the destination path."""
    return atomic_write_with(path, lambda fh: fh.write(text.encode(encoding)))


@contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for tools that write by file name; on a clean exit it is
    renamed over ``path``. If anything raises, it is removed and ``path`` is left as it was."""
    with _staged(path, Path(path).stem, suffix or Path(path).suffix) as (fd, tmp, target):
        os.close(fd)
        yield tmp
        if os.name == "posix":
            os.chmod(tmp, _new_file_mode(target))
