"""Write the procedural shapes dataset in YOLO segmentation layout.

    root/images/{train,val}/000000.jpg ...
    root/labels/{train,val}/000000.txt     one row per object: ``cls x1 y1 ... xn yn`` in [0, 1]
    root/data.yaml                          path / train / val / names

Image ``i`` of a split depends only on (seed, split, i, imgsz), so a larger dataset starts with the
images of a smaller one. The yaml is written as plain text (no pyyaml needed).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..opencv import require_cv2
from .scenes import Scene, render_scene
from .shapes import CLASS_NAMES

SPLITS = {"train": 0, "val": 1}
_OURS = re.compile(r"^\d{6}\.(jpg|png|txt)$")


def simplify_polygon(poly: np.ndarray, epsilon: float = 0.5, max_points: int = 100) -> np.ndarray:
    """Douglas-Peucker simplification (cv2.approxPolyDP) of a closed [k, 2] polygon to at most
    ``max_points`` vertices (``epsilon`` grows until it fits). Returns float64 [m, 2], m >= 3 when k >= 3."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    p = np.asarray(poly, np.float32).reshape(-1, 1, 2)
    if max_points < 3:
        raise ValueError(f"max_points must be >= 3, got {max_points!r}")
    if len(p) <= 3:
        return p.reshape(-1, 2).astype(np.float64)
    eps = float(epsilon)
    while True:
        out = cv2.approxPolyDP(p, eps, True).reshape(-1, 2)
        if len(out) <= max_points:
            break
        eps *= 1.5
    if len(out) < 3:  # degenerate simplification of a thin region: keep the original outline
        out = p.reshape(-1, 2)
    return out.astype(np.float64)


def label_rows(scene: Scene, epsilon: float = 0.5, max_points: int = 100) -> list[str]:
    """YOLO segmentation rows for a scene: class id then normalised x y pairs."""
    h, w = scene.image.shape[:2]
    rows = []
    for cls, poly in scene.labels:
        p = simplify_polygon(poly, epsilon, max_points)
        if len(p) < 3:
            continue
        xy = np.clip(p / (w, h), 0.0, 1.0).reshape(-1)
        rows.append(f"{int(cls)} " + " ".join(f"{v:.6f}" for v in xy))
    return rows


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for image ``index`` of ``split``: independent streams per (seed, split, index)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS[split], int(index)]))


def _check_count(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    return int(v)


def _clear_stale(folder: Path) -> None:
    """Remove files from an earlier run (our numbered names only), so a smaller dataset is not padded."""
    for entry in os.scandir(folder):
        if entry.is_file() and _OURS.match(entry.name):
            os.remove(entry.path)


def yaml_text(root: Path) -> str:
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    # json.dumps gives a double-quoted string, which is valid YAML for any path.
    return (
        f"# edgeseg procedural shapes dataset\npath: {json.dumps(str(root))}\n"
        f"train: images/train\nval: images/val\nnames:\n{names}\n"
    )


def write_dataset(
    root: str | os.PathLike, n_train: int, n_val: int, imgsz: int = 320, seed: int = 0, ext: str = "jpg"
) -> Path:
    """Render ``n_train`` + ``n_val`` scenes of ``imgsz`` x ``imgsz`` into ``root``; returns data.yaml's path."""
    cv2 = require_cv2("the synthetic shapes (demo clip and dataset)")
    n_train, n_val = _check_count("n_train", n_train), _check_count("n_val", n_val)
    if isinstance(imgsz, bool) or not isinstance(imgsz, (int, np.integer)) or imgsz < 32:
        raise ValueError(f"imgsz must be an integer >= 32, got {imgsz!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if ext not in ("jpg", "png"):
        raise ValueError(f"ext must be 'jpg' or 'png', got {ext!r}")
    root = Path(root).expanduser().resolve()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    for split, n in (("train", n_train), ("val", n_val)):
        im_dir, lb_dir = root / "images" / split, root / "labels" / split
        im_dir.mkdir(parents=True, exist_ok=True)
        lb_dir.mkdir(parents=True, exist_ok=True)
        _clear_stale(im_dir)
        _clear_stale(lb_dir)
        for i, scene in enumerate(iter_scenes(seed, split, n, imgsz)):
            name = f"{i:06d}"
            if not cv2.imwrite(str(im_dir / f"{name}.{ext}"), scene.image, params):
                raise OSError(f"could not write {im_dir / f'{name}.{ext}'}")
            rows = label_rows(scene)
            (lb_dir / f"{name}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    yaml_path = root / "data.yaml"
    yaml_path.write_text(yaml_text(root))
    return yaml_path


def iter_scenes(seed: int, split: str, n: int, imgsz: int = 320) -> Iterable[Scene]:
    """The scenes ``write_dataset`` would write for one split, without touching the disk."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    n = _check_count("n", n)  # checked here, not at the first next()
    return (render_scene(scene_rng(seed, split, i), imgsz, imgsz) for i in range(n))
