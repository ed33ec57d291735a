"""Read a YOLO dataset yaml (``path``, ``train``, ``val``, ``test``, ``names``/``nc``).

``path`` empty or missing means the folder holding the yaml; a relative ``path`` is relative to that
folder. ``train``/``val``/``test`` are relative to ``path`` and may each be a folder of images, a
``.txt`` file listing images (one per line, relative lines are relative to the txt's folder), or a
list of those.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from .errors import DatasetError, DatasetNotFoundError

IMG_FORMATS = ("jpg", "jpeg", "png", "bmp", "webp")

PathLike = Union[str, os.PathLike]


@dataclass
class DatasetConfig:
    """A dataset yaml, resolved: absolute sources per split, class names by id."""

    yaml_file: Path | None
    root: Path
    train: list[Path]
    val: list[Path]
    test: list[Path] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    @property
    def nc(self) -> int:
        return len(self.names)

    def split(self, name: str) -> list[Path]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; expected train, val or test")
        return getattr(self, name)


def _names(data: dict, where: str) -> dict[int, str]:
    names = data.get("names")
    nc = data.get("nc")
    if names is None:
        if nc is None:
            raise DatasetError(f"{where}: missing key 'names' (or 'nc')")
        try:
            return {i: f"class{i}" for i in range(int(nc))}
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: 'nc' must be an integer, got {nc!r}") from None
    if isinstance(names, (list, tuple)):
        out = {i: str(n) for i, n in enumerate(names)}
    elif isinstance(names, dict):
        try:
            out = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: 'names' keys must be integer class ids") from None
        if sorted(out) != list(range(len(out))):
            raise DatasetError(f"{where}: 'names' ids must be 0..{len(out) - 1} without gaps, got {sorted(out)}")
    else:
        raise DatasetError(f"{where}: 'names' must be a list or a dict, got {type(names).__name__}")
    if not out:
        raise DatasetError(f"{where}: 'names' is empty")
    if nc is not None and int(nc) != len(out):
        raise DatasetError(f"{where}: 'nc' is {nc} but 'names' has {len(out)} entries")
    return out


def _sources(value, root: Path, key: str, where: str) -> list[Path]:
    items: Sequence = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)) or not str(item).strip():
            raise DatasetError(f"{where}: '{key}' entries must be non-empty paths, got {item!r}")
        p = Path(str(item).strip()).expanduser()
        p = p if p.is_absolute() else root / p
        p = Path(os.path.normpath(p))
        if not p.exists():
            raise DatasetNotFoundError(f"{where}: '{key}' path not found: {p}")
        out.append(p)
    return out


def parse_dataset_dict(data: dict, base_dir: PathLike, where: str = "dataset") -> DatasetConfig:
    """Resolve an already-loaded dataset mapping; relative paths are relative to ``base_dir``."""
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    base = Path(base_dir).resolve()
    raw_root = data.get("path")
    if raw_root is None or str(raw_root).strip() == "":
        root = base
    else:
        root = Path(str(raw_root).strip()).expanduser()
        root = root if root.is_absolute() else base / root
    root = Path(os.path.normpath(root))
    if not root.is_dir():
        raise DatasetNotFoundError(f"{where}: dataset 'path' is not a folder: {root}")
    for key in ("train", "val"):
        if not data.get(key):
            raise DatasetError(f"{where}: missing key '{key}' (both 'train' and 'val' are required)")
    names = _names(data, where)
    return DatasetConfig(
        yaml_file=None,
        root=root,
        train=_sources(data["train"], root, "train", where),
        val=_sources(data["val"], root, "val", where),
        test=_sources(data["test"], root, "test", where) if data.get("test") else [],
        names=names,
    )


def load_dataset_yaml(path: PathLike) -> DatasetConfig:
    """Read and resolve a dataset yaml; raises DatasetError / DatasetNotFoundError with the file named."""
    import yaml  # train extra

    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetNotFoundError(f"dataset yaml not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DatasetError(f"{p}: cannot read dataset yaml: {e}") from None
    cfg = parse_dataset_dict(data if data is not None else {}, p.resolve().parent, where=str(p))
    cfg.yaml_file = p.resolve()
    return cfg


def list_image_files(sources: Sequence[PathLike]) -> list[Path]:
    """Images of a split: every image under a folder (recursive) or named in a .txt list, sorted, unique."""
    files = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            files += [f for f in src.rglob("*") if f.suffix[1:].lower() in IMG_FORMATS and f.is_file()]
        elif src.is_file() and src.suffix.lower() == ".txt":
            try:
                lines = src.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise DatasetError(f"{src}: cannot read image list: {e}") from None
            for line in lines:
                line = line.strip()
                if not line:
                    continue
                f = Path(line).expanduser()
                f = f if f.is_absolute() else src.parent / f
                if f.suffix[1:].lower() in IMG_FORMATS:
                    files.append(Path(os.path.normpath(f)))
        elif src.is_file() and src.suffix[1:].lower() in IMG_FORMATS:
            files.append(src)
        elif not src.exists():
            raise DatasetNotFoundError(f"image source not found: {src}")
        else:
            raise DatasetError(f"image source must be a folder, a .txt list or an image: {src}")
    return sorted(set(files), key=str)
