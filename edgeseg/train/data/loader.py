"""build_dataloader: worker processes, seeded and reproducible, DistributedSampler under DDP."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from .dataset import collate_fn

LOGGER = logging.getLogger("edgeseg.train.data")
MAX_WORKERS = 8


def seed_worker(worker_id: int) -> None:
    """Seed a worker from torch's per-worker seed (derived from the loader's seeded generator)."""
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    ds = getattr(info, "dataset", None)
    if ds is not None and hasattr(ds, "set_rng"):
        ds.set_rng(np.random.default_rng(seed))


def num_workers_for(batch: int, workers: int, world_size: int = 1) -> int:
    cpus = os.cpu_count() or 1
    return max(0, min(int(workers), cpus // max(1, world_size), MAX_WORKERS, max(1, int(batch))))


def build_dataloader(
    dataset,
    batch: int = 16,
    workers: int = 8,
    shuffle: bool = True,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` with :func:`collate_fn`.

    Uses ``num_workers = min(workers, cpu_count // world_size, 8, batch)`` persistent, seeded worker
    processes; with ``world_size > 1`` a DistributedSampler (call ``loader.sampler.set_epoch(epoch)``
    each epoch). Rect datasets are never shuffled (batches must keep their shapes).
    """
    if getattr(dataset, "rect", False) and shuffle:
        LOGGER.warning("rect=True is incompatible with shuffle; using shuffle=False")
        shuffle = False
    nw = num_workers_for(batch, workers, world_size)
    sampler: DistributedSampler | None = None
    if world_size > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    generator = torch.Generator()
    generator.manual_seed(int(seed) * 1000003 + int(rank))
    if nw == 0 and hasattr(dataset, "set_rng"):
        dataset.set_rng(np.random.default_rng([int(seed), int(rank)]))
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=nw,
        pin_memory=torch.cuda.is_available(),
        collate_fn=collate_fn,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=nw > 0,
        drop_last=drop_last,
    )
