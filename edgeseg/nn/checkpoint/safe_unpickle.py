"""A restricted reader for torch zip checkpoints whose pickle references foreign Python classes.

Ultralytics ``.pt`` files pickle whole ``nn.Module`` trees, so ``torch.load(weights_only=True)``
refuses them and ``weights_only=False`` would import and run whatever the pickle names. This module
reads such files without either: it opens the zip itself and unpickles ``data.pkl`` with an
:class:`pickle.Unpickler` whose ``find_class`` only resolves globals on an explicit allow-list:

* a few harmless builtins and containers (``collections.OrderedDict``, ``set``, ``torch.Size``);
* torch's tensor rebuild helpers, replaced by our own implementations that build a CPU tensor from
  a storage read out of the zip, and torch's typed storage names, replaced by inert dtype markers;
* every allowed ``torch.nn`` and Ultralytics module class, replaced by an inert :class:`StandIn`
  that only records the pickled state (``__dict__``) and runs no code of the original class.

Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises
:class:`UnsafeCheckpointError` naming it, from ``find_class`` - that is, before the global is imported
and before anything could call it. The pickle stream is also pre-scanned, and the extension-registry
opcodes (``EXT1/2/4``, which can resolve globals without ``find_class``) are refused.

Ultralytics itself never needs to be installed, and is never imported.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable

import numpy as np
import torch

from .errors import CheckpointFormatError, CheckpointNotFoundError, UnsafeCheckpointError

__all__ = [
    "SafeUnpickler",
    "StandIn",
    "allowed_globals",
    "open_torch_zip",
    "prescan_pickle",
    "read_torch_zip",
]

# Size caps: a pickle of a module tree is a few MB; a record far bigger than the file is a lie.
MAX_PICKLE_BYTES = 512 * 1024 * 1024

_TORCH_NN_CLASSES = {
    "torch.nn.modules.container": ("Sequential", "ModuleList", "ModuleDict"),
    "torch.nn.modules.conv": ("Conv2d", "ConvTranspose2d"),
    "torch.nn.modules.batchnorm": ("BatchNorm2d",),
    "torch.nn.modules.activation": ("SiLU",),
    "torch.nn.modules.linear": ("Identity",),
    "torch.nn.modules.pooling": ("MaxPool2d",),
    "torch.nn.modules.upsampling": ("Upsample",),
}

_ULTRALYTICS_CLASSES = {
    "ultralytics.nn.tasks": ("SegmentationModel",),
    "ultralytics.nn.modules.conv": ("Conv", "DWConv", "Concat"),
    "ultralytics.nn.modules.block": (
        "Bottleneck",
        "C2f",
        "C3k",
        "C3k2",
        "SPPF",
        "C2PSA",
        "PSABlock",
        "Attention",
        "DFL",
        "Proto",
        "Proto26",
    ),
    "ultralytics.nn.modules.head": ("Segment", "Segment26"),
    # Training arguments of some Ultralytics versions: plain namespaces, recorded inertly.
    "ultralytics.utils": ("IterableSimpleNamespace",),
    "types": ("SimpleNamespace",),
}

# Typed storage names torch writes into persistent ids, and the dtype each one stands for.
_STORAGE_DTYPES = {
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

_STORAGE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_REFUSED_OPCODES = {"EXT1", "EXT2", "EXT4"}


class StandIn:
    """Inert replacement for a pickled class: it records the pickled state and nothing else.

    ``global_name`` (a class attribute of each generated subclass) is the dotted name of the class it
    stands for; ``state`` is the pickled ``__dict__`` (an empty dict until the pickle sets it).
    """

    global_name = "?"
    state: Mapping[str, Any] = MappingProxyType({})  # until the pickle sets one (BUILD)

    def __init__(self):  # called only if a pickle REDUCEs the class itself; takes no arguments
        object.__setattr__(self, "state", {})

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ state)
            dict_state, slot_state = state
            merged: dict[str, Any] = {}
            for part in (dict_state, slot_state):
                if part is None:
                    continue
                if not isinstance(part, dict):
                    raise CheckpointFormatError(f"{self.global_name}: unexpected pickled state type")
                merged.update(part)
            state = merged
        if not isinstance(state, dict):
            raise CheckpointFormatError(f"{self.global_name}: pickled state is a {type(state).__name__}, not a dict")
        object.__setattr__(self, "state", state)

    def __repr__(self) -> str:
        return f"<stand-in for {self.global_name}>"

    @property
    def class_name(self) -> str:
        return self.global_name.rsplit(".", 1)[-1]


@cache
def _stand_in_class(global_name: str) -> type:
    return type(global_name.rsplit(".", 1)[-1], (StandIn,), {"global_name": global_name, "__module__": __name__})


class _StorageType:
    """Inert marker for a torch typed storage name such as ``torch.HalfStorage``."""

    def __init__(self, name: str, dtype: torch.dtype):
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<storage type {self.name}>"


class _Storage:
    """A storage read from the zip: a flat CPU tensor of its dtype."""

    __slots__ = ("flat",)

    def __init__(self, flat: torch.Tensor):
        self.flat = flat


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise CheckpointFormatError(f"tensor {what} must be a tuple of non-negative ints")
    return tuple(value)


def _check_no_hooks(backward_hooks: Any) -> None:
    if backward_hooks is None or (isinstance(backward_hooks, dict) and not backward_hooks):
        return
    raise CheckpointFormatError("checkpoint tensors carry backward hooks; refusing them")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Our stand-in for ``torch._utils._rebuild_tensor_v2``: a strided view into a loaded storage."""
    if not isinstance(storage, _Storage):
        raise CheckpointFormatError("a tensor is rebuilt from something that is not a storage")
    if isinstance(storage_offset, bool) or not isinstance(storage_offset, int) or storage_offset < 0:
        raise CheckpointFormatError("tensor storage offset must be a non-negative int")
    size = _int_tuple(size, "size")
    stride = _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise CheckpointFormatError("tensor size and stride differ in length")
    _check_no_hooks(backward_hooks)
    numel = storage.flat.numel()
    if all(size):
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel:
            raise CheckpointFormatError("a tensor reaches past the end of its storage")
    elif storage_offset > numel:
        raise CheckpointFormatError("a tensor starts past the end of its storage")
    return storage.flat.as_strided(size, stride, storage_offset)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Our stand-in for ``torch._utils._rebuild_parameter``: the plain tensor, without autograd."""
    if not isinstance(data, torch.Tensor):
        raise CheckpointFormatError("a parameter is rebuilt from something that is not a tensor")
    _check_no_hooks(backward_hooks)
    return data


def _size(dims=()):
    return torch.Size(_int_tuple(tuple(dims), "torch.Size"))


def allowed_globals() -> dict[str, Any]:
    """The allow-list: dotted global name -> what the safe unpickler hands out for it."""
    table: dict[str, Any] = {
        "collections.OrderedDict": OrderedDict,
        "builtins.set": set,
        "__builtin__.set": set,
        "builtins.frozenset": frozenset,
        "__builtin__.frozenset": frozenset,
        "torch.Size": _size,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
    }
    for name, dtype in _STORAGE_DTYPES.items():
        table[f"torch.{name}"] = _StorageType(name, dtype)
    for groups in (_TORCH_NN_CLASSES, _ULTRALYTICS_CLASSES):
        for module, names in groups.items():
            for name in names:
                table[f"{module}.{name}"] = _stand_in_class(f"{module}.{name}")
    return table


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals and loads storages through a callback.

    ``load_storage(dtype, key, numel)`` returns a flat CPU tensor for the zip record ``data/<key>``.
    """

    def __init__(self, file, *, source: object, load_storage: Callable | None = None):
        super().__init__(file)
        self._source = source
        self._load_storage = load_storage
        self._allowed = allowed_globals()
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        dotted = f"{module}.{name}"
        if not isinstance(module, str) or not isinstance(name, str) or dotted not in self._allowed:
            reason = ""
            if dotted.startswith("ultralytics."):
                reason = "edgeseg reads only YOLOv8-seg and YOLO11-seg checkpoints"
            raise UnsafeCheckpointError(self._source, dotted, reason)
        return self._allowed[dotted]

    def persistent_load(self, pid):
        if self._load_storage is None:
            raise CheckpointFormatError(f"{self._source}: unexpected persistent id in a plain pickle")
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointFormatError(f"{self._source}: unsupported persistent id {pid!r:.80}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"{self._source}: storage of unknown type {storage_type!r:.80}")
        if not isinstance(key, str) or not _STORAGE_KEY.match(key) or not isinstance(location, str):
            raise CheckpointFormatError(f"{self._source}: malformed storage key {key!r:.80}")
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
            raise CheckpointFormatError(f"{self._source}: malformed storage size {numel!r:.80}")
        cached = self._storages.get(key)
        if cached is not None:
            if cached.flat.dtype != storage_type.dtype or cached.flat.numel() != numel:
                raise CheckpointFormatError(f"{self._source}: storage {key} is used with two types")
            return cached
        storage = _Storage(self._load_storage(storage_type.dtype, key, numel))
        self._storages[key] = storage
        return storage


def prescan_pickle(data: bytes, source: object) -> None:
    """Walk the pickle opcodes without executing any; refuse malformed streams and EXT opcodes."""
    try:
        for opcode, _arg, _pos in pickletools.genops(data):
            if opcode.name in _REFUSED_OPCODES:
                raise UnsafeCheckpointError(
                    source, f"copyreg extension ({opcode.name})", "extension-registry opcodes are not allowed"
                )
    except UnsafeCheckpointError:
        raise
    except Exception as exc:  # genops raises ValueError and friends on malformed streams
        raise CheckpointFormatError(f"{source}: the pickle inside is corrupt ({exc})") from exc


def _check_path(path: Path) -> None:
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint is not a regular file: {path}")


def _not_zip_error(path: Path) -> CheckpointFormatError:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        return CheckpointFormatError(f"{path} is empty")
    if head[:1] == b"\x80" and head[1:2] in {bytes([p]) for p in range(2, 6)}:
        return CheckpointFormatError(
            f"{path} is a plain pickle (torch's legacy, pre-1.6 format or not a torch file); edgeseg "
            "reads only the zip format. Re-save it with a current torch."
        )
    if head[:2] == b"PK":
        return CheckpointFormatError(f"{path} looks like a zip archive but is truncated or corrupt")
    return CheckpointFormatError(f"{path} is not a torch checkpoint (not a zip archive)")


def open_torch_zip(path: Path) -> tuple[zipfile.ZipFile, str]:
    """Open ``path`` as a torch zip archive; return the archive and its record prefix."""
    _check_path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _not_zip_error(path) from exc
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        names = set(archive.namelist())
        archive.close()
        if any(n.endswith("/constants.pkl") for n in names):
            raise CheckpointFormatError(f"{path} is a TorchScript archive, not a checkpoint")
        raise CheckpointFormatError(f"{path} is a zip archive without a single torch data.pkl")
    return archive, pickles[0][: -len("/data.pkl")]


def _swap_bytes(raw: bytes, itemsize: int) -> bytes:
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, itemsize)[:, ::-1].tobytes()


def read_torch_zip(path, *, max_pickle_bytes: int = MAX_PICKLE_BYTES) -> Any:
    """Unpickle a torch zip checkpoint with :class:`SafeUnpickler`; tensors come back on the CPU."""
    path = Path(path)
    archive, prefix = open_torch_zip(path)
    with archive:
        try:
            info = archive.getinfo(f"{prefix}/data.pkl")
            if info.file_size > max_pickle_bytes:
                raise CheckpointFormatError(f"{path}: data.pkl is {info.file_size} bytes, over the cap")
            data = archive.read(info)
            big_endian = False
            if f"{prefix}/byteorder" in archive.namelist():
                order = archive.read(f"{prefix}/byteorder").decode("ascii", "replace").strip()
                if order not in ("little", "big"):
                    raise CheckpointFormatError(f"{path}: unknown byte order {order!r:.20}")
                big_endian = order != sys.byteorder
        except CheckpointFormatError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as exc:
            raise CheckpointFormatError(f"{path} is truncated or corrupt ({exc})") from exc

        prescan_pickle(data, path)

        def load_storage(dtype: torch.dtype, key: str, numel: int) -> torch.Tensor:
            itemsize = torch.empty((), dtype=dtype).element_size()
            try:
                record = archive.getinfo(f"{prefix}/data/{key}")
            except KeyError as exc:
                raise CheckpointFormatError(f"{path}: storage record data/{key} is missing") from exc
            if record.compress_type != zipfile.ZIP_STORED or record.compress_size != record.file_size:
                # torch stores records uncompressed; refusing others also rules out zip bombs
                raise CheckpointFormatError(f"{path}: storage data/{key} is compressed, not torch's layout")
            if record.file_size != numel * itemsize:
                raise CheckpointFormatError(
                    f"{path}: storage data/{key} holds {record.file_size} bytes, expected {numel * itemsize}"
                )
            if numel == 0:
                return torch.empty(0, dtype=dtype)
            try:
                raw = archive.read(record)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise CheckpointFormatError(f"{path}: storage data/{key} is corrupt ({exc})") from exc
            if big_endian and itemsize > 1:
                raw = _swap_bytes(raw, itemsize)
            return torch.frombuffer(bytearray(raw), dtype=dtype)

        unpickler = SafeUnpickler(io.BytesIO(data), source=path, load_storage=load_storage)
        try:
            return unpickler.load()
        except (UnsafeCheckpointError, CheckpointFormatError):
            raise
        except Exception as exc:  # malformed streams raise all sorts of errors
            raise CheckpointFormatError(f"{path}: cannot unpickle its data.pkl ({exc!r})") from exc
