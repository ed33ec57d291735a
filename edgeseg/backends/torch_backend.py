"""PyTorch backend: runs a checkpoint (``.pt``: Ultralytics' or edgeseg's own) directly.

Install torch separately (``pip install torch==2.13.0``, or ``pip install 'edgeseg[torch]'``). torch is
imported when a model is loaded, never at import time of edgeseg. The checkpoint is read by
:func:`edgeseg.nn.load.load_model` (a restricted unpickler for Ultralytics files: nothing in the file
runs), fused (Conv+BN) and run in eval mode under ``torch.inference_mode``. Its outputs have the
layout of Ultralytics' ONNX export, so the rest of the pipeline is shared with the other backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike, fspath
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendNotInstalledError, ModelLoadError
from ..metadata import ModelMetadata, parse_imgsz
from .base import Backend, InputSpec, identify_outputs

if TYPE_CHECKING:  # pragma: no cover
    from torch import device as TorchDevice

DEFAULT_IMGSZ = 640
STRIDE = 32


class TorchBackend(Backend):
    """Runs a YOLOv8/YOLO11-seg checkpoint with PyTorch.

    Options:
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:0"``, ...
        threads: CPU threads for torch (``torch.set_num_threads``, which is process-wide);
            ``intra_op_threads`` is accepted as an alias (the CLI's ``--threads``).
        imgsz: input size (int or (h, w), multiples of 32); default: the size the checkpoint was
            trained at, else 640. Any multiple of 32 works, as for a dynamic ONNX model.
        half: run in float16 (CUDA only).
    """

    name = "torch"
    package = "torch"
    extra = "torch"

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        device: str = "cpu",
        threads: int | None = None,
        intra_op_threads: int | None = None,
        imgsz: int | Sequence[int] | None = None,
        half: bool = False,
    ) -> None:
        try:
            import torch
        except ImportError as exc:
            raise BackendNotInstalledError(
                self.name, self.package, self.extra, f"or: pip install torch==2.13.0; {exc}"
            ) from exc
        self._torch = torch
        self.path = Path(fspath(path))
        if not self.path.exists():
            raise FileNotFoundError(f"model not found: {self.path}")
        if not self.path.is_file():
            raise ModelLoadError(f"{self.path} is not a file; expected a .pt checkpoint")

        if threads is not None and intra_op_threads is not None and threads != intra_op_threads:
            raise ValueError("give threads or intra_op_threads, not both")
        threads = threads if threads is not None else intra_op_threads
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ValueError(f"threads must be a positive int, got {threads!r}")
            torch.set_num_threads(threads)
        self.device = self._device(device)
        self.half = bool(half)
        if self.half and self.device.type != "cuda":
            raise ValueError(
                "half=True needs a CUDA device (float16 convolutions on CPU are slow and "
                "not what deployment runtimes do); use device='cuda:0' or half=False"
            )

        from ..nn.load import load_model  # imports torch; only here

        model, info = load_model(self.path, device="cpu")
        model = model.float().eval()
        for p in model.parameters():
            p.requires_grad_(False)
        model.fuse()
        model = model.to(self.device)
        if self.half:
            model = model.half()
        self._model = model
        self._info = info

        source = self.path.name
        trained = _imgsz_or_none(info.imgsz)
        size = parse_imgsz(imgsz) if imgsz is not None else trained or (DEFAULT_IMGSZ, DEFAULT_IMGSZ)
        if size[0] % STRIDE or size[1] % STRIDE:
            raise ValueError(f"input size {size[0]}x{size[1]} must be a multiple of the model stride {STRIDE}")
        extras = {"format": info.format, "architecture": f"{info.arch}{info.scale}-seg"}
        for key in ("version", "date", "license", "docs"):
            if info.extras.get(key) is not None:
                extras[key] = info.extras[key]
        self.metadata = ModelMetadata(names=dict(info.names), imgsz=size, stride=STRIDE, task="segment", extras=extras)
        self.input_spec = InputSpec(name="images", shape=size, layout="nchw", dtype="float32")
        h, w = size
        anchors = sum((h // s) * (w // s) for s in (8, 16, 32))
        self._preds_shape: tuple[int, int, int]
        head = model.model[-1]
        nm = int(head.nm)
        end2end = bool(model.end2end)  # YOLO26: the NMS-free rows [1, K, 6 + nm] of its one-to-one head
        preds = (1, min(int(head.max_det), anchors), 6 + nm) if end2end else (1, 4 + info.nc + nm, anchors)
        self._preds_shape = preds
        self.output_layout = identify_outputs(
            [preds, (1, nm, h // 4, w // 4)], nc_hint=info.nc, source=source, end2end=end2end
        )

    def _device(self, device: str | None) -> TorchDevice:
        torch = self._torch
        try:
            dev: TorchDevice = torch.device(device if device is not None else "cpu")
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"invalid device {device!r}; use 'cpu' or 'cuda:0'") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available to torch {torch.__version__}; use device='cpu'"
            )
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"unsupported device {device!r}; use 'cpu' or 'cuda:N'")
        return dev

    def infer(self, blob: NDArray[Any]) -> list[NDArray[Any]]:
        expected = self.input_spec.blob_shape
        if blob.shape != expected:
            raise ValueError(f"blob shape {blob.shape} does not match the model input {expected}")
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(blob, dtype=np.float32)).to(self.device)
        if self.half:
            x = x.half()
        with torch.inference_mode():
            preds, protos = self._model(x)
        return [preds.float().cpu().numpy(), protos.float().cpu().numpy()]

    def describe(self) -> dict[str, Any]:
        torch = self._torch
        info = self._info
        h, w = self.input_spec.shape
        return {
            "backend": self.name,
            "torch": torch.__version__,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "checkpoint_format": info.format,
            "architecture": f"{info.arch}{info.scale}-seg",
            "inputs": [{"name": "images", "shape": [1, 3, h, w], "type": "float32"}],
            "outputs": [
                {
                    "name": "output0",
                    "shape": list(self._preds_shape),
                },
                {"name": "output1", "shape": [1, self.output_layout.nm, h // 4, w // 4]},
            ],
        }


def _imgsz_or_none(value: object) -> tuple[int, int] | None:
    """A checkpoint's training imgsz (int or list) -> (h, w), or None when absent or unusable."""
    if value is None:
        return None
    try:
        return parse_imgsz(value, stride=STRIDE)
    except ValueError:
        return None
