"""Per-split cache of verified labels, stored without pickle.

The cache is ``labels/<split>.cache`` next to the split's labels folder (``np.savez`` format, read with
``allow_pickle=False``), keyed by a hash of every image and label path with its size and mtime, the
class count and the cache version. If the folder is not writable (e.g. a read-only shared dataset), the
result is kept in memory for this process instead, with one warning per folder; caching never fails a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_with
from .label_records import LOGGER, ImageLabels, LabelSummary, img2label_path

CACHE_VERSION = 1

_memory: dict[str, tuple[str, bytes]] = {}  # cache path -> (key, npz bytes), for read-only folders
_warned: set = set()
_lock = threading.Lock()


def cache_path_for(im_files: Sequence) -> Path:
    """``.../labels/train2017/x.txt`` -> ``.../labels/train2017.cache``."""
    return img2label_path(im_files[0]).parent.with_suffix(".cache")


def _stat_token(path: str) -> str:
    try:
        st = os.stat(path)
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "-"


def dataset_hash(im_files: Sequence, nc: int) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|nc{nc}|".encode())
    for f in im_files:
        lf = str(img2label_path(f))
        h.update(f"{f}|{_stat_token(str(f))}|{lf}|{_stat_token(lf)}\n".encode())
    return h.hexdigest()


def _encode(key: str, labels: list[ImageLabels], summary: LabelSummary) -> bytes:
    segs = [s for lb in labels for s in lb.segments]
    # Any: numpy's stubs would let a **dict of arrays bind savez's keyword-only allow_pickle (numpy >= 2.1)
    arrays: dict[str, Any] = {
        "version": np.array(CACHE_VERSION),
        "key": np.array(key),
        "im_files": np.array([lb.im_file for lb in labels], dtype=str),
        "shapes": np.array([lb.shape for lb in labels], np.int64).reshape(-1, 2),
        "n_inst": np.array([len(lb.cls) for lb in labels], np.int64),
        "cls": np.concatenate([lb.cls for lb in labels] + [np.zeros(0, np.int64)]).astype(np.int64),
        "n_pts": np.array([len(s) for s in segs], np.int64),
        "pts": np.concatenate([*segs, np.zeros((0, 2), np.float32)]).astype(np.float32),
        "messages": np.array(summary.messages, dtype=str),
        "counts": np.array(json.dumps(summary.counts())),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _decode(data: bytes, key: str) -> tuple[list[ImageLabels], LabelSummary] | None:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        if int(z["version"]) != CACHE_VERSION or str(z["key"]) != key:
            return None
        im_files, shapes, n_inst = z["im_files"], z["shapes"], z["n_inst"]
        cls, n_pts, pts = z["cls"], z["n_pts"], z["pts"]
        messages = [str(m) for m in z["messages"]]
        counts = json.loads(str(z["counts"]))
    seg_ends = np.cumsum(n_pts)
    segs = np.split(pts, seg_ends[:-1]) if len(n_pts) else []
    inst_ends = np.cumsum(n_inst)
    labels, start = [], 0
    for f, shp, end in zip(im_files, shapes, inst_ends):
        labels.append(
            ImageLabels(
                str(f),
                (int(shp[0]), int(shp[1])),
                cls[start:end].astype(np.int64),
                [np.ascontiguousarray(s) for s in segs[start:end]],
            )
        )
        start = end
    summary = LabelSummary(messages=messages)
    for k in LabelSummary.COUNTS:
        setattr(summary, k, int(counts[k]))
    return labels, summary


def load_cache(cache_file: Path, key: str) -> tuple[list[ImageLabels], LabelSummary] | None:
    """``(labels, summary)`` if a valid cache exists (on disk or in memory), else None. Never raises."""
    with _lock:
        mem = _memory.get(str(cache_file))
    candidates = []
    if mem is not None and mem[0] == key:
        candidates.append(mem[1])
    with contextlib.suppress(OSError):
        candidates.append(Path(cache_file).read_bytes())
    for data in candidates:
        try:
            out = _decode(data, key)
        except Exception as e:  # corrupt cache file: ignore it and rescan
            LOGGER.warning("%s: ignoring unreadable label cache (%s)", cache_file, e)
            continue
        if out is not None:
            return out
    return None


def _writable_dir(d: Path) -> bool:
    try:
        st = d.stat()
    except OSError:
        return False
    # honour a folder marked read-only even for root (who could write it anyway)
    return bool(st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(d, os.W_OK)


def _write_atomic(cache_file: Path, data: bytes) -> None:
    atomic_write_with(cache_file, lambda fh: fh.write(data))


def save_cache(cache_file: Path, key: str, labels: list[ImageLabels], summary: LabelSummary) -> bool:
    """Write the cache; keep it in memory (warning once per folder) if that is impossible. Returns True if on disk."""
    data = _encode(key, labels, summary)
    cache_file = Path(cache_file)
    if _writable_dir(cache_file.parent):
        try:
            _write_atomic(cache_file, data)
            return True
        except OSError as e:
            reason = str(e)
    else:
        reason = "folder is read-only"
    with _lock:
        _memory[str(cache_file)] = (key, data)
        first = str(cache_file.parent) not in _warned
        _warned.add(str(cache_file.parent))
    if first:
        LOGGER.warning("%s: cannot write label cache (%s); keeping it in memory for this run", cache_file, reason)
    return False


def clear_memory_cache() -> None:
    """Forget in-memory caches (tests)."""
    with _lock:
        _memory.clear()
        _warned.clear()
