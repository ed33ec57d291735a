"""edgeseg's own checkpoint format: a dict of tensors and plain Python values.

Layout (key order matters: ``format`` comes first so that a loader can recognise the file from the
first bytes of its pickle)::

    {"format": "edgeseg-checkpoint", "version": 1, "edgeseg_version": "0.1.0",
     "arch": "yolov8", "scale": "n", "nc": 80, "names": {0: "person", ...}, "imgsz": 640,
     "train_args": {...}, "state_dict": {"model.0.conv.weight": tensor, ...},
     # optional, for resuming training:
     "epoch": 12, "optimizer": {...}, "ema": {...}, "updates": 3400, "best_fitness": 0.41,
     "rng_state": {...}}

Everything in it loads with ``torch.load(path, weights_only=True)``, which is how
:func:`load_checkpoint` reads it. Files are written atomically (:mod:`.atomic`). Optional
``safetensors`` variants hold only the weights plus JSON metadata; they need the ``safetensors``
package.
"""

from __future__ import annotations

import json
import pickle
import random
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_write_with
from .errors import CheckpointFormatError, CheckpointNotFoundError, UnsafeCheckpointError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "TRAINING_KEYS",
    "capture_rng_state",
    "is_native_checkpoint",
    "load_checkpoint",
    "load_safetensors",
    "make_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "save_safetensors",
]

FORMAT_NAME = "edgeseg-checkpoint"
FORMAT_VERSION = 1
TRAINING_KEYS = ("epoch", "optimizer", "ema", "updates", "best_fitness", "rng_state")
_REQUIRED_KEYS = ("version", "arch", "scale", "nc", "names", "state_dict")
_MAX_NESTING = 64


def _edgeseg_version() -> str:
    from edgeseg.version import __version__

    return __version__


def _plain(value: Any, where: str, depth: int = 0) -> Any:
    """Check ``value`` is made only of tensors and plain types; return it with tensors on the CPU."""
    if depth > _MAX_NESTING:
        raise ValueError(f"{where}: nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, Mapping):
        out = OrderedDict() if isinstance(value, OrderedDict) else {}
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"{where}: dict key {key!r} is not a str or int")
            out[key] = _plain(item, f"{where}[{key!r}]", depth + 1)
        return out
    raise TypeError(
        f"{where} is a {type(value).__name__}; an edgeseg checkpoint holds only tensors, numbers, "
        "strings, None, lists, tuples and dicts (convert paths to str and arrays to tensors)"
    )


def _state_dict_of(value: Any, what: str) -> Mapping | None:
    if value is None or isinstance(value, Mapping):
        return value
    if hasattr(value, "state_dict") and callable(value.state_dict):
        return value.state_dict()
    raise TypeError(f"{what} must be a state dict or an object with .state_dict(), got {type(value).__name__}")


def _names_dict(names: Any, nc: int) -> dict[int, str]:
    if names is None:
        names = [str(i) for i in range(nc)]
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, Mapping):
        raise TypeError(f"names must be a list or a dict, got {type(names).__name__}")
    out = {int(k): str(v) for k, v in names.items()}
    if sorted(out) != list(range(nc)):
        raise ValueError(f"names must name each class 0..{nc - 1} exactly once, got {len(out)} entries")
    return out


def make_checkpoint(
    model: Any = None,
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    arch: str | None = None,
    scale: str | None = None,
    nc: int | None = None,
    names: Any = None,
    imgsz: Any = 640,
    train_args: Mapping[str, Any] | None = None,
    **training: Any,
) -> dict:
    """Build the checkpoint dict from a model (its ``arch``/``scale``/``nc``/``names`` attributes and
    weights) or from an explicit ``state_dict`` plus those fields. ``training`` takes the optional
    resume keys: ``epoch``, ``optimizer`` and ``ema`` (objects with ``state_dict()`` or state dicts),
    ``updates``, ``best_fitness``, ``rng_state`` (see :func:`capture_rng_state`)."""
    unknown = set(training) - set(TRAINING_KEYS)
    if unknown:
        raise TypeError(f"unknown checkpoint fields: {', '.join(sorted(unknown))}")
    if model is not None:
        if state_dict is not None:
            raise TypeError("give a model or a state_dict, not both")
        state_dict = model.state_dict()
        arch = arch if arch is not None else getattr(model, "arch", None)
        scale = scale if scale is not None else getattr(model, "scale", None)
        nc = nc if nc is not None else getattr(model, "nc", None)
        names = names if names is not None else getattr(model, "names", None)
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise ValueError("a checkpoint needs a non-empty state_dict (or a model)")
    if not isinstance(arch, str) or not isinstance(scale, str):
        raise ValueError("arch and scale must be given as strings (e.g. 'yolov8', 'n')")
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise ValueError(f"nc must be a positive int, got {nc!r}")
    weights = OrderedDict()
    for key, tensor in state_dict.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise TypeError("state_dict must map str keys to tensors")
        weights[key] = tensor.detach().cpu()
    ckpt = {
        "format": FORMAT_NAME,  # must stay the first key (see is_native_checkpoint)
        "version": FORMAT_VERSION,
        "edgeseg_version": _edgeseg_version(),
        "arch": arch,
        "scale": scale,
        "nc": nc,
        "names": _names_dict(names, nc),
        "imgsz": _plain(imgsz, "imgsz"),
        "train_args": _plain(dict(train_args or {}), "train_args"),
        "state_dict": weights,
    }
    for key in TRAINING_KEYS:
        value = training.get(key)
        if key in ("optimizer", "ema"):
            value = _state_dict_of(value, key)
        if value is not None:
            ckpt[key] = _plain(value, key)
    return ckpt


def save_checkpoint(path, model: Any = None, **fields: Any) -> Path:
    """Write an edgeseg checkpoint atomically; arguments as :func:`make_checkpoint`."""
    ckpt = make_checkpoint(model, **fields)
    return atomic_write_with(path, lambda fh: torch.save(ckpt, fh))


def _pickle_head(path: Path, limit: int = 4096) -> bytes:
    """The first bytes of a torch zip's data.pkl, or b'' when the file is not a torch zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkls) != 1:
                return b""
            with archive.open(pkls[0]) as fh:
                return fh.read(limit)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return b""


def is_native_checkpoint(path) -> bool:
    """True when ``path`` is a torch zip whose pickle starts with ``{"format": "edgeseg-checkpoint"``.

    Only the first few opcodes are decoded (as data, nothing is executed)."""
    import pickletools

    head = _pickle_head(Path(path))
    strings = []
    try:
        for opcode, arg, _pos in pickletools.genops(head):
            if isinstance(arg, str) and "UNICODE" in opcode.name:
                strings.append(arg)
            if len(strings) >= 2 or opcode.name in ("GLOBAL", "STACK_GLOBAL", "STOP"):
                break
    except Exception:  # the head is cut mid-opcode: what was decoded so far is enough
        pass
    return strings[:2] == ["format", FORMAT_NAME]


_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL ([\w.]+)")


def _torch_load_weights_only(path: Path) -> Any:
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint is not a regular file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL_IN_MESSAGE.search(str(exc))
        if found:
            raise UnsafeCheckpointError(path, found.group(1)) from exc
        raise CheckpointFormatError(f"{path}: cannot load it as an edgeseg checkpoint ({exc})") from exc
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointFormatError(f"{path} is truncated or corrupt ({exc})") from exc


def load_checkpoint(path) -> dict:
    """Load and validate an edgeseg checkpoint (with ``torch.load(weights_only=True)``)."""
    path = Path(path)
    ckpt = _torch_load_weights_only(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_NAME:
        raise CheckpointFormatError(f"{path} is not an edgeseg checkpoint")
    missing = [k for k in _REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointFormatError(f"{path}: edgeseg checkpoint lacks {', '.join(missing)}")
    version = ckpt["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointFormatError(f"{path}: invalid checkpoint version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointFormatError(
            f"{path} is an edgeseg checkpoint of version {version}; this edgeseg reads up to "
            f"{FORMAT_VERSION}. Upgrade edgeseg."
        )
    for key, kind in (("arch", str), ("scale", str), ("nc", int), ("names", dict), ("state_dict", dict)):
        if not isinstance(ckpt[key], kind):
            raise CheckpointFormatError(f"{path}: '{key}' is a {type(ckpt[key]).__name__}")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt["state_dict"].items()):
        raise CheckpointFormatError(f"{path}: state_dict must map names to tensors")
    try:
        ckpt["names"] = _names_dict(ckpt["names"], ckpt["nc"])
    except (TypeError, ValueError) as exc:
        raise CheckpointFormatError(f"{path}: {exc}") from exc
    return ckpt


# -- random number generator state, for resuming training ------------------------------------------


def capture_rng_state() -> dict:
    """Python, NumPy and torch RNG states, in plain types that a checkpoint can hold."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (missing parts are left alone)."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "torch" in state:
        torch.set_rng_state(state["torch"])


# -- optional safetensors variant -------------------------------------------------------------------

_META_FIELDS = ("arch", "scale", "nc", "names", "imgsz", "train_args")


def _safetensors():
    try:
        import safetensors
        import safetensors.torch
    except ImportError as exc:
        raise ImportError(
            "saving/loading .safetensors needs the 'safetensors' package: pip install safetensors"
        ) from exc
    return safetensors


def save_safetensors(path, model: Any = None, **fields: Any) -> Path:
    """Write the weights and metadata (JSON in the safetensors header) atomically. No training state."""
    safetensors = _safetensors()
    ckpt = make_checkpoint(model, **fields)
    meta = {"format": FORMAT_NAME, "version": str(FORMAT_VERSION), "edgeseg_version": ckpt["edgeseg_version"]}
    meta.update({k: json.dumps(ckpt[k]) for k in _META_FIELDS})
    tensors = {k: v.contiguous() for k, v in ckpt["state_dict"].items()}
    payload = safetensors.torch.save(tensors, metadata=meta)
    return atomic_write_with(path, lambda fh: fh.write(payload))


def load_safetensors(path) -> dict:
    """Read a file written by :func:`save_safetensors` into the same dict layout as
    :func:`load_checkpoint` (without training state)."""
    safetensors = _safetensors()
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            state_dict = OrderedDict((k, fh.get_tensor(k)) for k in fh.keys())  # noqa: SIM118 - safe_open is not iterable
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointFormatError(f"{path} is not a readable safetensors file ({exc})") from exc
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointFormatError(f"{path} is a safetensors file without edgeseg metadata")
    try:
        ckpt = {k: json.loads(meta[k]) for k in _META_FIELDS}
        version = int(meta["version"])
    except (KeyError, ValueError) as exc:
        raise CheckpointFormatError(f"{path}: malformed edgeseg metadata ({exc})") from exc
    if version > FORMAT_VERSION:
        raise CheckpointFormatError(f"{path}: edgeseg checkpoint version {version} is newer than this edgeseg")
    ckpt.update(format=FORMAT_NAME, version=version, edgeseg_version=meta.get("edgeseg_version"), state_dict=state_dict)
    try:
        ckpt["names"] = _names_dict(ckpt["names"], ckpt["nc"])
    except (TypeError, ValueError) as exc:
        raise CheckpointFormatError(f"{path}: {exc}") from exc
    return ckpt
