"""Optimiser construction as Ultralytics (8.4) does it.

Three parameter groups, in this order (``lr/pg0..2`` in results.csv):

0. biases (no weight decay), tagged ``param_group="bias"`` (their warmup starts at ``warmup_bias_lr``);
1. convolution / linear weights, with (batch-scaled) weight decay, ``param_group="weight"``;
2. normalisation-layer weights (BatchNorm etc., no weight decay), ``param_group="bn"``.

``optimizer="auto"`` picks MuSGD (lr 0.01, momentum 0.9) for long runs (more than 10 000 nominal
iterations, ``ceil(n_images / max(batch, nbs)) * epochs``), else AdamW with the fitted
``lr = round(0.002 * 5 / (4 + nc), 6)`` and momentum (beta1) 0.9; the bias warmup lr is then 0.

MuSGD (:class:`MuSGD`): every matrix and conv kernel (ndim 2 or 4) is in a ``param_group="muon"`` group with
weight decay, stepped by Muon (Newton-Schulz-orthogonalised Nesterov momentum) at ``0.2 * lr`` plus SGD-Nesterov
at ``lr``; biases and norm weights get SGD-Nesterov alone. Each group is split in two so that the class
branches of a YOLO26 head (``cv3``, ``one2one_cv3``) and its semantic branch (``proto.semseg``) learn at
``3 * lr``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "MuSGD",
    "OptimizerChoice",
    "accumulate_steps",
    "build_optimizer",
    "choose_optimizer",
    "newton_schulz5",
    "nominal_iterations",
    "param_groups",
    "scaled_weight_decay",
]

LOGGER = logging.getLogger("edgeseg.train")

AUTO_MUSGD_ITERATIONS = 10000
MUON_SCALE, SGD_SCALE = 0.2, 1.0  # MuSGD: step sizes of its two updates, times lr
FAST_HEAD_LR = 3.0  # MuSGD: lr factor of a YOLO26 head's class and semantic branches
NS5_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


@dataclass(frozen=True)
class OptimizerChoice:
    name: str  # SGD, Adam, AdamW or MuSGD
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
    canon = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "musgd": "MuSGD", "auto": "auto"}.get(str(name).lower())
    if canon is None:
        raise ValueError(f"unknown optimizer {name!r}; choose auto, SGD, Adam, AdamW or MuSGD")
    if canon != "auto":
        return OptimizerChoice(canon, float(lr), float(momentum), False)
    if iterations > AUTO_MUSGD_ITERATIONS:
        return OptimizerChoice("MuSGD", 0.01, 0.9, True)
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


def _fast_head_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters MuSGD steps at 3 x lr: a YOLO26 head's class branches and semantic branch."""
    from edgeseg.nn.head26 import Segment26Head

    fast: set[int] = set()
    for module in model.modules():
        if isinstance(module, Segment26Head):
            for branch in (module.cv3, module.one2one_cv3):
                if branch is not None:
                    fast.update(id(p) for p in branch.parameters())
            semseg = getattr(module.proto, "semseg", None)
            if semseg is not None:
                fast.update(id(p) for p in semseg.parameters())
    return fast


def build_optimizer(model: nn.Module, choice: OptimizerChoice, decay: float) -> torch.optim.Optimizer:
    """The optimiser for ``model`` with the three parameter groups (bias, weight, bn); MuSGD adds the muon group
    and splits each group for the fast head branches (see the module docstring)."""
    g_decay, g_bn, g_bias = param_groups(model)
    if not (g_decay or g_bn or g_bias):
        raise ValueError("the model has no trainable parameters")
    common: dict[str, Any]  # the optimiser's keyword arguments, also each group's defaults
    cls: type[torch.optim.Optimizer]
    if choice.name in ("Adam", "AdamW"):
        common = {"lr": choice.lr, "betas": (choice.momentum, 0.999)}
        cls = torch.optim.AdamW if choice.name == "AdamW" else torch.optim.Adam
    elif choice.name in ("SGD", "MuSGD"):
        common = {"lr": choice.lr, "momentum": choice.momentum, "nesterov": True}
        cls = torch.optim.SGD if choice.name == "SGD" else MuSGD
    else:
        raise ValueError(f"unknown optimizer {choice.name!r}")
    g_muon: list[nn.Parameter] = []
    if choice.name == "MuSGD":  # matrices and conv kernels: Muon + SGD, whatever group they were in
        matrix = [p for p in (*g_bias, *g_decay, *g_bn) if p.ndim in (2, 4)]
        ids = {id(p) for p in matrix}
        g_muon = matrix
        g_bias, g_decay, g_bn = ([p for p in g if id(p) not in ids] for g in (g_bias, g_decay, g_bn))
    groups = [
        {"params": g_bias, "weight_decay": 0.0, "param_group": "bias", **common},
        {"params": g_decay, "weight_decay": decay, "param_group": "weight", **common},
        {"params": g_bn, "weight_decay": 0.0, "param_group": "bn", **common},
    ]
    if choice.name == "MuSGD":
        groups.append({"params": g_muon, "weight_decay": decay, "param_group": "muon", "use_muon": True, **common})
        fast = _fast_head_parameters(model)
        split = []
        for group in groups:
            params = group.pop("params")
            split.append({**group, "params": [p for p in params if id(p) in fast], "lr": choice.lr * FAST_HEAD_LR})
            split.append({**group, "params": [p for p in params if id(p) not in fast]})
        groups = split
    optimizer = cls(groups, **common)
    LOGGER.info(
        "optimizer: %s(lr=%g, momentum=%g) with parameter groups %d weight(decay=0.0), "
        "%d weight(decay=%g), %d bias(decay=0.0)",
        choice.name,
        choice.lr,
        choice.momentum,
        len(g_bn),
        len(g_muon) if choice.name == "MuSGD" else len(g_decay),
        decay,
        len(g_bias),
    )
    return optimizer


def newton_schulz5(g: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """An approximate orthogonalisation of the matrix ``g`` (U V^T of its SVD, singular values pushed towards
    1): five quintic Newton-Schulz steps with Muon's coefficients, in bfloat16 after dividing by the Frobenius
    norm (+ ``eps``); a tall matrix is worked on transposed."""
    if g.ndim != 2:
        raise ValueError(f"newton_schulz5 takes a matrix, got shape {tuple(g.shape)}")
    a, b, c = NS5_COEFFICIENTS
    x = g.bfloat16()
    x = x / (x.norm() + eps)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(5):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class MuSGD(torch.optim.Optimizer):
    """Muon + SGD, as Ultralytics' MuSGD(muon=0.2, sgd=1.0).

    Groups with ``use_muon`` (matrices, conv kernels): ``m = momentum * m + (1 - momentum) * g``; the Nesterov
    direction ``momentum * m + (1 - momentum) * g``, flattened to (out, rest), orthogonalised
    (:func:`newton_schulz5`) and scaled by ``sqrt(max(1, rows / cols))`` of the gradient's last two dims, is
    applied at ``muon * lr``; then an SGD-Nesterov step (weight decay added to the gradient, a second buffer) at
    ``sgd * lr``. Other groups: SGD-Nesterov (or plain momentum without ``nesterov``) at ``lr``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        use_muon: bool = False,
        muon: float = MUON_SCALE,
        sgd: float = SGD_SCALE,
    ):
        if lr < 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"invalid MuSGD settings: lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov}
        defaults["use_muon"] = use_muon
        super().__init__(params, defaults)
        self.muon = float(muon)
        self.sgd = float(sgd)

    @staticmethod
    def _sgd_direction(grad, buf, momentum: float, nesterov: bool) -> torch.Tensor:
        buf.mul_(momentum).add_(grad)
        return grad.add(buf, alpha=momentum) if nesterov else buf

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, nesterov, wd = group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if group["use_muon"]:
                    if not state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                        state["momentum_buffer_sgd"] = torch.zeros_like(p)
                    buf = state["momentum_buffer"]
                    buf.lerp_(grad, 1 - momentum)
                    direction = grad.lerp(buf, momentum) if nesterov else buf
                    flat = direction.reshape(len(direction), -1) if direction.ndim == 4 else direction
                    update = newton_schulz5(flat) * max(1.0, grad.size(-2) / grad.size(-1)) ** 0.5
                    p.add_(update.reshape(p.shape), alpha=-(lr * self.muon))
                    if wd:
                        grad = grad.add(p, alpha=wd)
                    p.add_(
                        self._sgd_direction(grad, state["momentum_buffer_sgd"], momentum, nesterov),
                        alpha=-(lr * self.sgd),
                    )
                else:
                    if wd:
                        grad = grad.add(p, alpha=wd)
                    if not state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    p.add_(self._sgd_direction(grad, state["momentum_buffer"], momentum, nesterov), alpha=-lr)
        return loss
