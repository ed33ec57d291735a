"""Learning-rate schedule and warmup, as Ultralytics' trainer.

* per epoch: ``lr = initial_lr * lf(epoch)`` with ``lf`` linear, ``(1 - x / epochs) * (1 - lrf) + lrf``,
  or cosine (``cos_lr``), ``one_cycle(1, lrf, epochs)``;
* warmup, per iteration ``ni < nw`` with ``nw = max(round(warmup_epochs * nb), 100)``: the bias group's
  lr falls from ``warmup_bias_lr`` to its scheduled lr, the other groups rise from 0; SGD momentum rises
  from ``warmup_momentum`` to ``momentum``; the number of accumulated batches rises from 1 to
  ``nbs / batch`` (all by ``np.interp``).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
import torch

__all__ = [
    "MIN_WARMUP_ITERATIONS",
    "apply_warmup",
    "build_scheduler",
    "linear_lambda",
    "lr_lambda",
    "one_cycle",
    "set_epoch",
    "warmup_iterations",
]

MIN_WARMUP_ITERATIONS = 100


def linear_lambda(epochs: int, lrf: float) -> Callable[[float], float]:
    return lambda x: max(1 - x / epochs, 0) * (1.0 - lrf) + lrf


def one_cycle(y1: float = 0.0, y2: float = 1.0, steps: int = 100) -> Callable[[float], float]:
    """Cosine ramp from y1 to y2 over ``steps`` (https://arxiv.org/pdf/1812.01187.pdf)."""
    return lambda x: max((1 - math.cos(x * math.pi / steps)) / 2, 0) * (y2 - y1) + y1


def lr_lambda(epochs: int, lrf: float, cos_lr: bool = False) -> Callable[[float], float]:
    return one_cycle(1, lrf, epochs) if cos_lr else linear_lambda(epochs, lrf)


def build_scheduler(optimizer: torch.optim.Optimizer, lf: Callable[[float], float]):
    """A ``LambdaLR`` (it records ``initial_lr`` in every group and sets ``lr = initial_lr * lf(0)``)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)


def set_epoch(scheduler, epoch: int) -> None:
    """Put the scheduler (and the groups' lr) at ``epoch``: ``lr = initial_lr * lf(epoch)``."""
    scheduler.last_epoch = epoch - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        scheduler.step()


def warmup_iterations(warmup_epochs: float, nb: int) -> int:
    """Warmup length in iterations (-1: no warmup)."""
    return max(round(warmup_epochs * nb), MIN_WARMUP_ITERATIONS) if warmup_epochs > 0 else -1


def apply_warmup(
    optimizer: torch.optim.Optimizer,
    ni: int,
    nw: int,
    lf_epoch: float,
    *,
    warmup_bias_lr: float,
    warmup_momentum: float,
    momentum: float,
    nbs: int,
    batch: int,
) -> int:
    """Set every group's lr (and SGD momentum) for iteration ``ni`` of a ``nw``-iteration warmup.

    ``lf_epoch`` is ``lf(epoch)``. Returns the accumulation count for this iteration."""
    xi = [0, nw]
    accumulate = max(1, int(np.interp(ni, xi, [1, nbs / batch]).round()))
    for group in optimizer.param_groups:
        start = warmup_bias_lr if group.get("param_group") == "bias" else 0.0
        group["lr"] = float(np.interp(ni, xi, [start, group["initial_lr"] * lf_epoch]))
        if "momentum" in group:
            group["momentum"] = float(np.interp(ni, xi, [warmup_momentum, momentum]))
    return accumulate
