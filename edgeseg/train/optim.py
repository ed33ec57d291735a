"""Optimiser construction as Ultralytics does it.

Three parameter groups, in this order (``lr/pg0..2`` in results.csv):

0. biases (no weight decay), tagged ``param_group="bias"`` (their warmup starts at ``warmup_bias_lr``);
1. convolution / linear weights, with (batch-scaled) weight decay, ``param_group="weight"``;
2. normalisation-layer weights (BatchNorm etc., no weight decay), ``param_group="bn"``.

``optimizer="auto"`` picks SGD (lr 0.01, momentum 0.9) for long runs (more than 10 000 nominal
iterations, ``ceil(n_images / max(batch, nbs)) * epochs``), else AdamW with the fitted
``lr = round(0.002 * 5 / (4 + nc), 6)`` and momentum (beta1) 0.9; the bias warmup lr is then 0.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "OptimizerChoice",
    "accumulate_steps",
    "build_optimizer",
    "choose_optimizer",
    "nominal_iterations",
    "param_groups",
    "scaled_weight_decay",
]

LOGGER = logging.getLogger("edgeseg.train")

AUTO_SGD_ITERATIONS = 10000


@dataclass(frozen=True)
class OptimizerChoice:
    name: str  # SGD, Adam or AdamW
    lr: float
    momentum: float
    auto: bool  # chosen by optimizer="auto"


def accumulate_steps(batch: int, nbs: int) -> int:
    """Batches whose gradients are summed before each optimiser step: ``max(round(nbs / batch), 1)``."""
    return max(round(nbs / batch), 1)


def scaled_weight_decay(weight_decay: float, batch: int, accumulate: int, nbs: int) -> float:
    """Weight decay scaled to the effective batch: ``weight_decay * batch * accumulate / nbs``."""
    return weight_decay * batch * accumulate / nbs


def nominal_iterations(n_images: int, batch: int, nbs: int, epochs: int) -> int:
    """``ceil(n_images / max(batch, nbs)) * epochs`` (what ``optimizer="auto"`` compares with 10 000)."""
    return math.ceil(n_images / max(batch, nbs)) * epochs


def choose_optimizer(name: str, lr: float, momentum: float, nc: int, iterations: int) -> OptimizerChoice:
    """Resolve ``"auto"`` (see module docstring); any other name keeps ``lr`` and ``momentum``."""
    canon = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "auto": "auto"}.get(str(name).lower())
    if canon is None:
        raise ValueError(f"unknown optimizer {name!r}; choose auto, SGD, Adam or AdamW")
    if canon != "auto":
        return OptimizerChoice(canon, float(lr), float(momentum), False)
    if iterations > AUTO_SGD_ITERATIONS:
        return OptimizerChoice("SGD", 0.01, 0.9, True)
    return OptimizerChoice("AdamW", round(0.002 * 5 / (4 + nc), 6), 0.9, True)


def param_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """(weights with decay, norm-layer weights, biases), trainable parameters only, each once."""
    norm_types = tuple(v for k, v in nn.__dict__.items() if "Norm" in k and isinstance(v, type))
    decay, no_decay, bias = [], [], []
    seen = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if param_name == "bias" or "bias" in f"{module_name}.{param_name}":
                bias.append(param)
            elif isinstance(module, norm_types):
                no_decay.append(param)
            else:
                decay.append(param)
    return decay, no_decay, bias


def build_optimizer(model: nn.Module, choice: OptimizerChoice, decay: float) -> torch.optim.Optimizer:
    """The optimiser for ``model`` with the three parameter groups (bias, weight, bn)."""
    g_decay, g_bn, g_bias = param_groups(model)
    if not (g_decay or g_bn or g_bias):
        raise ValueError("the model has no trainable parameters")
    common: dict[str, Any]  # the optimiser's keyword arguments, also each group's defaults
    cls: type[torch.optim.Adam] | type[torch.optim.AdamW] | type[torch.optim.SGD]
    if choice.name in ("Adam", "AdamW"):
        common = {"lr": choice.lr, "betas": (choice.momentum, 0.999)}
        cls = torch.optim.AdamW if choice.name == "AdamW" else torch.optim.Adam
    elif choice.name == "SGD":
        common = {"lr": choice.lr, "momentum": choice.momentum, "nesterov": True}
        cls = torch.optim.SGD
    else:
        raise ValueError(f"unknown optimizer {choice.name!r}")
    groups = [
        {"params": g_bias, "weight_decay": 0.0, "param_group": "bias", **common},
        {"params": g_decay, "weight_decay": decay, "param_group": "weight", **common},
        {"params": g_bn, "weight_decay": 0.0, "param_group": "bn", **common},
    ]
    optimizer = cls(groups, **common)
    LOGGER.info(
        "optimizer: %s(lr=%g, momentum=%g) with parameter groups %d weight(decay=0.0), "
        "%d weight(decay=%g), %d bias(decay=0.0)",
        choice.name,
        choice.lr,
        choice.momentum,
        len(g_bn),
        len(g_decay),
        decay,
        len(g_bias),
    )
    return optimizer
