"""Checkpoint files: edgeseg's own format and safe reading of Ultralytics ``.pt`` files.

* :mod:`.native` - edgeseg checkpoints (tensors and plain values only; ``weights_only`` loadable);
* :mod:`.ultralytics_pt` - Ultralytics YOLOv8-seg / YOLO11-seg ``.pt`` files, read without Ultralytics;
* :mod:`.safe_unpickle` - the allow-list unpickler both of the latter rely on;
* :mod:`.atomic` - atomic file writes;
* :mod:`.errors` - the exceptions.

Use :func:`edgeseg.nn.load.load_model` to get a ready model from any of them.
"""

from .atomic import atomic_write, atomic_write_with
from .errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    StateDictMismatchError,
    UnsafeCheckpointError,
)
from .native import (
    FORMAT_NAME,
    FORMAT_VERSION,
    capture_rng_state,
    is_native_checkpoint,
    load_checkpoint,
    load_safetensors,
    make_checkpoint,
    restore_rng_state,
    save_checkpoint,
    save_safetensors,
)
from .safe_unpickle import allowed_globals, read_torch_zip
from .ultralytics_pt import UltralyticsCheckpoint, read_ultralytics_checkpoint

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointNotFoundError",
    "StateDictMismatchError",
    "UltralyticsCheckpoint",
    "UnsafeCheckpointError",
    "allowed_globals",
    "atomic_write",
    "atomic_write_with",
    "capture_rng_state",
    "is_native_checkpoint",
    "load_checkpoint",
    "load_safetensors",
    "make_checkpoint",
    "read_torch_zip",
    "read_ultralytics_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "save_safetensors",
]
