"""YOLOv8-seg, YOLO11-seg and YOLO26-seg architecture definitions and the ``SegmentationModel`` built from them.

Each architecture is a flat list of :class:`Layer` records (backbone then neck then head), written
as Python data. Layer ``i`` becomes ``model.{i}`` so that parameter names match Ultralytics
checkpoints one to one. Channel counts are the *base* (width 1.0) values; a scale applies
``make_divisible(min(c, max_channels) * width, 8)`` to them and ``max(round(n * depth), 1)`` to
repeat counts above one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from .head import SegmentHead
from .head26 import Segment26Head
from .modules import C2PSA, SPPF, C2f, C3k2, Concat, Conv

__all__ = [
    "ARCHITECTURES",
    "YOLO11_SEG",
    "YOLO26_SEG",
    "YOLOV8_SEG",
    "ArchSpec",
    "Layer",
    "Scale",
    "SegmentationModel",
    "make_divisible",
]


@dataclass(frozen=True)
class Scale:
    depth: float
    width: float
    max_channels: int


@dataclass(frozen=True)
class Layer:
    """One layer: ``kind`` of block, input ``src`` (index or indices; -1 = previous layer),
    base output ``channels`` (ignored for channel-preserving kinds), ``repeats`` and block options."""

    kind: str
    src: int | tuple[int, ...] = -1
    channels: int = 0
    repeats: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    scales: Mapping[str, Scale]
    layers: tuple[Layer, ...]
    light_cls_head: bool = False  # YOLO11: depth-wise class branch
    c3k_scales: tuple[str, ...] = ()  # scales whose C3k2 blocks all use C3k inner blocks


def _conv(c: int, k: int = 1, s: int = 1) -> Layer:
    return Layer("conv", channels=c, options={"k": k, "s": s})


def _c2f(c: int, n: int, shortcut: bool = False) -> Layer:
    return Layer("c2f", channels=c, repeats=n, options={"shortcut": shortcut})


def _c3k2(c: int, n: int, c3k: bool = False, e: float = 0.5, attn: bool = False) -> Layer:
    return Layer("c3k2", channels=c, repeats=n, options={"c3k": c3k, "e": e, "attn": attn})


def _sppf(c: int, k: int = 5, n: int = 3, shortcut: bool = False) -> Layer:
    return Layer("sppf", channels=c, options={"k": k, "n": n, "shortcut": shortcut})


def _up() -> Layer:
    return Layer("upsample")


def _cat(*src: int) -> Layer:
    return Layer("concat", src=tuple(src))


def _segment(src: tuple[int, int, int], nm: int = 32, npr: int = 256, kind: str = "segment") -> Layer:
    return Layer(kind, src=src, options={"nm": nm, "npr": npr})


YOLOV8_SEG = ArchSpec(
    name="yolov8",
    scales=MappingProxyType(
        {
            # "t" is edgeseg's own, not an Ultralytics scale: half the width of "n", for the built-in demo model.
            "t": Scale(0.33, 0.125, 1024),
            "n": Scale(0.33, 0.25, 1024),
            "s": Scale(0.33, 0.50, 1024),
            "m": Scale(0.67, 0.75, 768),
            "l": Scale(1.00, 1.00, 512),
            "x": Scale(1.00, 1.25, 512),
        }
    ),
    layers=(
        # backbone
        _conv(64, 3, 2),  # 0  P1/2
        _conv(128, 3, 2),  # 1  P2/4
        _c2f(128, 3, shortcut=True),  # 2
        _conv(256, 3, 2),  # 3  P3/8
        _c2f(256, 6, shortcut=True),  # 4
        _conv(512, 3, 2),  # 5  P4/16
        _c2f(512, 6, shortcut=True),  # 6
        _conv(1024, 3, 2),  # 7  P5/32
        _c2f(1024, 3, shortcut=True),  # 8
        _sppf(1024),  # 9
        # neck (top-down then bottom-up)
        _up(),  # 10
        _cat(-1, 6),  # 11
        _c2f(512, 3),  # 12
        _up(),  # 13
        _cat(-1, 4),  # 14
        _c2f(256, 3),  # 15 P3 out
        _conv(256, 3, 2),  # 16
        _cat(-1, 12),  # 17
        _c2f(512, 3),  # 18 P4 out
        _conv(512, 3, 2),  # 19
        _cat(-1, 9),  # 20
        _c2f(1024, 3),  # 21 P5 out
        _segment((15, 18, 21)),  # 22
    ),
)

YOLO11_SEG = ArchSpec(
    name="yolo11",
    scales=MappingProxyType(
        {
            "n": Scale(0.50, 0.25, 1024),
            "s": Scale(0.50, 0.50, 1024),
            "m": Scale(0.50, 1.00, 512),
            "l": Scale(1.00, 1.00, 512),
            "x": Scale(1.00, 1.50, 512),
        }
    ),
    layers=(
        # backbone
        _conv(64, 3, 2),  # 0  P1/2
        _conv(128, 3, 2),  # 1  P2/4
        _c3k2(256, 2, c3k=False, e=0.25),  # 2
        _conv(256, 3, 2),  # 3  P3/8
        _c3k2(512, 2, c3k=False, e=0.25),  # 4
        _conv(512, 3, 2),  # 5  P4/16
        _c3k2(512, 2, c3k=True),  # 6
        _conv(1024, 3, 2),  # 7  P5/32
        _c3k2(1024, 2, c3k=True),  # 8
        _sppf(1024),  # 9
        Layer("c2psa", channels=1024, repeats=2),  # 10
        # neck
        _up(),  # 11
        _cat(-1, 6),  # 12
        _c3k2(512, 2),  # 13
        _up(),  # 14
        _cat(-1, 4),  # 15
        _c3k2(256, 2),  # 16 P3 out
        _conv(256, 3, 2),  # 17
        _cat(-1, 13),  # 18
        _c3k2(512, 2),  # 19 P4 out
        _conv(512, 3, 2),  # 20
        _cat(-1, 10),  # 21
        _c3k2(1024, 2, c3k=True),  # 22 P5 out
        _segment((16, 19, 22)),  # 23
    ),
    light_cls_head=True,
    c3k_scales=("m", "l", "x"),
)

# YOLO26: YOLO11's scales and backbone, a residual SPPF, C3k blocks in the whole neck, an attention block in the
# last neck stage, and the two-branch NMS-free head with Proto26 (Ultralytics' yolo26-seg.yaml, 8.4).
YOLO26_SEG = ArchSpec(
    name="yolo26",
    scales=YOLO11_SEG.scales,
    layers=(
        # backbone
        _conv(64, 3, 2),  # 0  P1/2
        _conv(128, 3, 2),  # 1  P2/4
        _c3k2(256, 2, c3k=False, e=0.25),  # 2
        _conv(256, 3, 2),  # 3  P3/8
        _c3k2(512, 2, c3k=False, e=0.25),  # 4
        _conv(512, 3, 2),  # 5  P4/16
        _c3k2(512, 2, c3k=True),  # 6
        _conv(1024, 3, 2),  # 7  P5/32
        _c3k2(1024, 2, c3k=True),  # 8
        _sppf(1024, 5, 3, shortcut=True),  # 9
        Layer("c2psa", channels=1024, repeats=2),  # 10
        # neck
        _up(),  # 11
        _cat(-1, 6),  # 12
        _c3k2(512, 2, c3k=True),  # 13
        _up(),  # 14
        _cat(-1, 4),  # 15
        _c3k2(256, 2, c3k=True),  # 16 P3 out
        _conv(256, 3, 2),  # 17
        _cat(-1, 13),  # 18
        _c3k2(512, 2, c3k=True),  # 19 P4 out
        _conv(512, 3, 2),  # 20
        _cat(-1, 10),  # 21
        _c3k2(1024, 1, c3k=True, e=0.5, attn=True),  # 22 P5 out
        _segment((16, 19, 22), kind="segment26"),  # 23
    ),
    light_cls_head=True,
    c3k_scales=("m", "l", "x"),
)

ARCHITECTURES: Mapping[str, ArchSpec] = MappingProxyType(
    {spec.name: spec for spec in (YOLOV8_SEG, YOLO11_SEG, YOLO26_SEG)}
)

STRIDES = (8.0, 16.0, 32.0)


def make_divisible(x: float, divisor: int) -> int:
    """Smallest multiple of ``divisor`` that is >= ``x``."""
    return int(math.ceil(x / divisor) * divisor)


def _sources(layer: Layer, index: int) -> tuple[int, ...]:
    src = layer.src if isinstance(layer.src, tuple) else (layer.src,)
    return tuple(s if s >= 0 else index + s for s in src)


def _build_layer(
    layer: Layer, index: int, ch: Sequence[int], spec: ArchSpec, scale_name: str, nc: int
) -> tuple[nn.Module, int]:
    """Instantiate ``layer`` given the output channels ``ch`` of every earlier layer (ch[-1] = input)."""
    scale = spec.scales[scale_name]
    src = _sources(layer, index)
    c_in = [ch[s] for s in src]

    def width(c: int) -> int:
        return make_divisible(min(c, scale.max_channels) * scale.width, 8)

    n = max(round(layer.repeats * scale.depth), 1) if layer.repeats > 1 else layer.repeats
    opts = dict(layer.options)
    kind = layer.kind
    if kind == "conv":
        c2 = width(layer.channels)
        return Conv(c_in[0], c2, opts["k"], opts["s"]), c2
    if kind == "c2f":
        c2 = width(layer.channels)
        return C2f(c_in[0], c2, n, shortcut=opts["shortcut"]), c2
    if kind == "c3k2":
        c2 = width(layer.channels)
        c3k = opts["c3k"] or scale_name in spec.c3k_scales
        return C3k2(c_in[0], c2, n, c3k=c3k, e=opts["e"], attn=opts.get("attn", False)), c2
    if kind == "sppf":
        c2 = width(layer.channels)
        return SPPF(c_in[0], c2, opts["k"], opts["n"], opts["shortcut"]), c2
    if kind == "c2psa":
        c2 = width(layer.channels)
        return C2PSA(c_in[0], c2, n), c2
    if kind == "upsample":
        return nn.Upsample(scale_factor=2.0, mode="nearest"), c_in[0]
    if kind == "concat":
        return Concat(1), sum(c_in)
    if kind == "segment":
        head = SegmentHead(
            nc,
            c_in,
            strides=STRIDES,
            nm=opts["nm"],
            npr=width(opts["npr"]),
            light_cls=spec.light_cls_head,
        )
        return head, 0
    if kind == "segment26":
        return Segment26Head(nc, c_in, strides=STRIDES, nm=opts["nm"], npr=width(opts["npr"])), 0
    raise ValueError(f"unknown layer kind {kind!r} at index {index}")


def _normalise_names(names: Any, nc: int) -> dict[int, str]:
    if names is None:
        return {i: str(i) for i in range(nc)}
    if isinstance(names, Mapping):
        out = {int(k): str(v) for k, v in names.items()}
    elif isinstance(names, (list, tuple)):
        out = {i: str(v) for i, v in enumerate(names)}
    else:
        raise ValueError(f"names must be None, a list/tuple or a dict, got {type(names).__name__}")
    if sorted(out) != list(range(nc)):
        raise ValueError(f"names must give exactly one name for each class 0..{nc - 1}, got {len(out)} entries")
    return out


class SegmentationModel(nn.Module):
    """A YOLOv8-seg / YOLO11-seg / YOLO26-seg network.

    ``model`` is a ModuleList whose i-th entry is layer i (parameter names ``model.{i}.*`` match
    Ultralytics checkpoints). Forward (YOLOv8/11; YOLO26's head is described in :mod:`.head26`):

    * training mode: ``(feats, mc, protos)`` - per-level ``[B, 4*16+nc, H, W]`` maps,
      ``[B, 32, A]`` mask coefficients and ``[B, 32, H/4, W/4]`` prototypes;
    * eval mode: ``(y, protos)`` - ``y = [B, 4+nc+32, A]`` (cx, cy, w, h in input pixels, sigmoid
      class scores, raw mask coefficients), the layout of Ultralytics' ONNX export.
    """

    stride: torch.Tensor  # buffer [3]: the level strides (STRIDES), registered in __init__

    def __init__(self, arch: str = "yolov8", scale: str = "n", nc: int = 80, names: Any = None) -> None:
        super().__init__()
        spec = ARCHITECTURES.get(arch) if isinstance(arch, str) else None
        if spec is None:
            raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(sorted(ARCHITECTURES))}")
        if not isinstance(scale, str) or scale not in spec.scales:
            raise ValueError(f"unknown scale {scale!r} for {arch}; valid: {', '.join(spec.scales)}")
        if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
            raise ValueError(f"nc must be a positive int, got {nc!r}")
        self.arch = spec.name
        self.scale = scale
        self.nc = nc
        self.names = _normalise_names(names, nc)

        ch: list[int] = []  # output channels of each layer so far
        layers: list[nn.Module] = []
        self._sources: list[tuple[int, ...]] = []
        for i, layer in enumerate(spec.layers):
            module, c2 = _build_layer(layer, i, ch or [3], spec, scale, nc)
            layers.append(module)
            self._sources.append(_sources(layer, i))
            ch.append(c2)
        self.model = nn.ModuleList(layers)
        used = {s for srcs in self._sources for s in srcs}
        self._keep = frozenset(i for i in used if i >= 0)
        self.register_buffer("stride", torch.tensor(STRIDES), persistent=False)
        self.head.bias_init()

    @property
    def head(self) -> SegmentHead | Segment26Head:
        head = self.model[-1]
        if not isinstance(head, (SegmentHead, Segment26Head)):  # pragma: no cover - the architecture ends with one
            raise TypeError(f"the last layer is a {type(head).__name__}, not a segmentation head")
        return head

    def forward(self, x: torch.Tensor):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected input [B, 3, H, W], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input height and width must be multiples of 32, got {h}x{w}")
        return self.head(self.head_inputs(x))

    def head_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run every layer but the head; return the head's input feature maps (P3, P4, P5)."""
        outs: dict[int, torch.Tensor] = {}
        last = len(self.model) - 1
        inp: torch.Tensor | list[torch.Tensor]
        for i, (module, src) in enumerate(zip(self.model, self._sources)):
            if len(src) == 1:
                inp = x if src[0] == i - 1 else outs[src[0]]
            else:
                inp = [x if s == i - 1 else outs[s] for s in src]
            if i == last:
                return list(inp)
            x = module(inp)
            if i in self._keep:
                outs[i] = x
        raise RuntimeError("model has no head")  # pragma: no cover - the architecture ends with one

    @property
    def end2end(self) -> bool:
        """Whether the model has, and uses in eval mode, an NMS-free one-to-one head (YOLO26)."""
        head = self.head
        return isinstance(head, Segment26Head) and head.end2end

    def fuse(self) -> SegmentationModel:
        """Fold every Conv's BatchNorm into its convolution (for inference); a YOLO26 head also drops the
        branch its ``end2end`` setting does not use and the training-only semantic branch. Returns self."""
        head = self.head
        if isinstance(head, Segment26Head):
            head.fuse()
        for module in self.modules():
            if isinstance(module, Conv):
                module.fuse()
        return self

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, scale={self.scale!r}, nc={self.nc}"
