"""Exponential moving average of a model's weights (parameters and floating-point buffers).

``decay(updates) = decay * (1 - exp(-updates / tau))`` ramps the averaging in over the first updates,
as Ultralytics' ``ModelEMA`` (decay 0.9999, tau 2000).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from copy import deepcopy

import torch
from torch import nn

__all__ = ["ModelEMA", "unwrap_model"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DataParallel / DistributedDataParallel wrappers."""
    while isinstance(model, (nn.parallel.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


class ModelEMA:
    """Keeps ``ema``, an eval-mode copy of the model whose floating-point state follows the training model."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000, updates: int = 0) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if tau <= 0:
            raise ValueError(f"EMA tau must be > 0, got {tau}")
        self.ema = deepcopy(unwrap_model(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay_max = float(decay)
        self.tau = float(tau)
        self.updates = int(updates)

    def decay(self, updates: int) -> float:
        return self.decay_max * (1 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay(self.updates)
        msd = unwrap_model(model).state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach().to(v.dtype), alpha=1 - d)

    def state_dict(self) -> dict:
        return {"state_dict": self.ema.state_dict(), "updates": self.updates, "decay": self.decay_max, "tau": self.tau}

    def load_state_dict(self, state: Mapping) -> None:
        if "state_dict" in state:
            self.ema.load_state_dict(state["state_dict"])
        self.updates = int(state.get("updates", self.updates))
        self.decay_max = float(state.get("decay", self.decay_max))
        self.tau = float(state.get("tau", self.tau))
