"""Distributed data-parallel (DDP) helpers.

* Under ``torchrun`` (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` set) the trainer joins the process group
  itself: :func:`setup` uses NCCL on CUDA and Gloo otherwise (CPU DDP works, e.g. for tests).
* ``edgeseg train --device 0,1`` (several CUDA devices, no torchrun around it) re-launches itself with
  :func:`launch`: ``python -m torch.distributed.run --nproc_per_node 2 -m edgeseg.train.run_ddp --cfg F``.

Only rank 0 writes checkpoints, logs and plots; gradients are averaged by ``DistributedDataParallel``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "all_gather_object",
    "barrier",
    "broadcast_object",
    "cleanup",
    "device_count",
    "env_world",
    "free_port",
    "is_main_process",
    "launch",
    "launch_command",
    "parse_device",
    "select_device",
    "setup",
]

LOGGER = logging.getLogger("edgeseg.train")

DDP_TIMEOUT = timedelta(hours=3)


@dataclass
class DistInfo:
    rank: int = 0  # global rank (0 when not distributed)
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this process created the process group (and destroys it in cleanup)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> tuple:
    """(rank, local_rank, world_size) from torchrun's environment variables; (0, 0, 1) when absent."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"bad torchrun environment (RANK/LOCAL_RANK/WORLD_SIZE): {exc}") from None
    return rank, local, max(world, 1)


def is_main_process() -> bool:
    return env_world()[0] == 0


def parse_device(device: str) -> tuple:
    """``""``/``cpu``/``mps``/``cuda``/``cuda:N``/``N``/``N,M`` -> (kind, [indices]); kind in cpu, mps, cuda.

    ``""`` means CUDA device 0 when available, else the CPU."""
    device = (device or "").strip().lower().replace(" ", "")
    if device == "":
        return ("cuda", [0]) if torch.cuda.is_available() else ("cpu", [])
    if device in ("cpu", "mps"):
        return device, []
    if device == "cuda":
        return "cuda", [0]
    text = device[5:] if device.startswith("cuda:") else device
    try:
        ids = [int(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"invalid device {device!r}: use 'cpu', '0' or '0,1'") from None
    return "cuda", ids


def select_device(device: str, local_rank: int = 0) -> torch.device:
    """The torch device this process trains on (checks CUDA availability and indices)."""
    kind, ids = parse_device(device)
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError("device 'mps' requested but MPS is not available; use --device cpu")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise ValueError(
            f"CUDA device {','.join(map(str, ids))} requested but CUDA is not available "
            f"(torch {torch.__version__}); use --device cpu"
        )
    n = torch.cuda.device_count()
    bad = [i for i in ids if i >= n]
    if bad:
        raise ValueError(f"CUDA device {bad[0]} requested but only {n} device(s) are visible")
    index = ids[local_rank] if local_rank < len(ids) else ids[local_rank % len(ids)]
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def setup(device: str) -> DistInfo:
    """Join (or create) the process group when running under torchrun; pick this process's device."""
    rank, local_rank, world = env_world()
    dev = select_device(device, local_rank if world > 1 else 0)
    if world <= 1:
        return DistInfo(0, 0, 1, dev, False)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" and dist.is_nccl_available() else "gloo"
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=DDP_TIMEOUT)
        owns = True
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), dev, owns)


def cleanup(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def broadcast_object(info: DistInfo, obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (unchanged when not distributed)."""
    if not info.distributed:
        return obj
    box = [obj if info.rank == src else None]
    dist.broadcast_object_list(box, src=src, device=info.device if info.device.type == "cuda" else None)
    return box[0]


def all_gather_object(info: DistInfo, obj: Any) -> list[Any]:
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_command(cfg_file: Path, nproc: int, port: int | None = None) -> list[str]:
    """The torchrun command line that trains with the config saved in ``cfg_file`` on ``nproc`` processes."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(int(nproc)),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port or free_port()),
        "-m",
        "edgeseg.train.run_ddp",
        "--cfg",
        str(cfg_file),
    ]


def launch(cfg: Mapping[str, Any], nproc: int, extra_env: Mapping[str, str] | None = None) -> int:
    """Run training in ``nproc`` processes with torchrun; returns its exit code."""
    fd, name = tempfile.mkstemp(prefix="edgeseg-ddp-", suffix=".json")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(cfg), fh)
        cmd = launch_command(path, nproc)
        LOGGER.info("DDP: %s", " ".join(cmd))
        env = dict(os.environ, **(extra_env or {}))
        return subprocess.run(cmd, env=env).returncode
    finally:
        path.unlink(missing_ok=True)


def device_count(device: str) -> int:
    """How many processes ``device`` asks for (CUDA indices listed), 1 for CPU/MPS/single devices."""
    kind, ids = parse_device(device)
    return len(ids) if kind == "cuda" else 1
