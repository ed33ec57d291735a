"""Anchor-free detection + instance-segmentation head (YOLOv8-seg / YOLO11-seg)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .modules import DFL, Conv, DWConv

__all__ = [
    "AnchorHead",
    "Proto",
    "SegmentHead",
    "conv_tower",
    "dist2bbox",
    "light_cls_tower",
    "make_anchors",
    "out_bias",
]


class Proto(nn.Module):
    """Mask prototype branch: 3x3 conv, 2x transposed-conv upsample, 3x3 conv, 1x1 conv to ``c2``."""

    def __init__(self, c1: int, c_: int = 256, c2: int = 32) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c_, 3)
        self.upsample = nn.ConvTranspose2d(c_, c_, 2, 2, 0, bias=True)
        self.cv2 = Conv(c_, c_, 3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


def make_anchors(
    levels: Sequence[tuple[int, int] | torch.Tensor],
    strides: Sequence[float],
    offset: float = 0.5,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor points (cell centres, in grid units) and per-anchor strides.

    ``levels`` are the (H, W) of each level, or the feature maps (..., H, W) themselves; ``dtype`` and
    ``device`` default to the first feature map's (float32 on the default device for sizes). Anchors are
    listed level by level, each level row-major. Returns ``points`` [A, 2] as (x, y) and ``stride_tensor``
    [A, 1].
    """
    if len(levels) == 0 or len(levels) != len(strides):
        raise ValueError(f"need one stride per feature level, got {len(levels)} levels and {len(strides)} strides")
    first = levels[0]
    if isinstance(first, torch.Tensor):
        dtype = first.dtype if dtype is None else dtype
        device = first.device if device is None else device
    dtype = torch.float32 if dtype is None else dtype
    points, stride_list = [], []
    for level, s in zip(levels, strides):
        if isinstance(level, torch.Tensor):
            if level.ndim < 2:
                raise ValueError(f"feature maps must be (..., H, W), got shape {tuple(level.shape)}")
            h, w = level.shape[-2:]
        else:
            h, w = level
        sx = torch.arange(w, device=device, dtype=dtype) + offset
        sy = torch.arange(h, device=device, dtype=dtype) + offset
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), float(s), dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_list)


def dist2bbox(distance: torch.Tensor, anchor_points: torch.Tensor, xywh: bool = False, dim: int = -1) -> torch.Tensor:
    """(left, top, right, bottom) distances from anchor points (along ``dim``) -> boxes, xyxy or xywh."""
    if distance.shape[dim] != 4:
        raise ValueError(f"distance must have size 4 along dim {dim}, got shape {tuple(distance.shape)}")
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


def conv_tower(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
    """Conv3x3 -> Conv3x3 -> plain Conv2d 1x1 (with bias)."""
    return nn.Sequential(Conv(c_in, c_mid, 3), Conv(c_mid, c_mid, 3), nn.Conv2d(c_mid, c_out, 1))


def light_cls_tower(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
    """YOLO11 class branch: (DWConv3x3 -> Conv1x1) twice -> plain Conv2d 1x1 (with bias)."""
    return nn.Sequential(
        nn.Sequential(DWConv(c_in, c_in, 3), Conv(c_in, c_mid, 1)),
        nn.Sequential(DWConv(c_mid, c_mid, 3), Conv(c_mid, c_mid, 1)),
        nn.Conv2d(c_mid, c_out, 1),
    )


def out_bias(tower: nn.Module) -> torch.Tensor:
    """The bias of a tower's last layer, its plain 1x1 Conv2d."""
    last = tower[-1] if isinstance(tower, nn.Sequential) else None
    if not isinstance(last, nn.Conv2d) or last.bias is None:
        raise TypeError(f"expected a Sequential ending in a Conv2d with bias, got {tower!r}")
    return last.bias


class AnchorHead(nn.Module):
    """What every YOLO head shares: its level strides and the anchor points of a feature-map shape, cached."""

    def __init__(self, strides: Sequence[float]) -> None:
        super().__init__()
        self.level_strides = tuple(float(s) for s in strides)
        self.register_buffer("stride", torch.tensor(self.level_strides), persistent=False)
        self._anchor_cache: dict = {}

    def anchors_for(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(anchor points [2, A], strides [1, A]) for these feature maps, cached by shape/dtype/device."""
        sizes = tuple((int(f.shape[2]), int(f.shape[3])) for f in feats)
        ref = feats[0]
        key = (sizes, ref.dtype, ref.device)
        cached = self._anchor_cache.get(key)
        if cached is None:
            points, strides = make_anchors(sizes, self.level_strides, 0.5, dtype=ref.dtype, device=ref.device)
            cached = (points.transpose(0, 1).contiguous(), strides.transpose(0, 1).contiguous())
            self._anchor_cache = {key: cached}
        return cached

    def reset_anchor_cache(self) -> None:
        """Forget cached anchors (an export traces the anchor computation, it must not read a cache)."""
        self._anchor_cache = {}

    def _apply(self, fn, recurse=True):  # drop cached anchors on .to()/.half()/...
        self._anchor_cache = {}
        return super()._apply(fn, recurse)


class SegmentHead(AnchorHead):
    """Decoupled box / class / mask-coefficient branches per level plus a prototype branch.

    Training mode returns ``(feats, mc, protos)``:
      * feats: list of ``[B, 4*reg_max + nc, H_i, W_i]`` (box distribution logits, class logits),
      * mc: ``[B, nm, A]`` mask coefficients,
      * protos: ``[B, nm, H_0*2, W_0*2]``.
    Eval mode returns ``(y, protos)`` with ``y = [B, 4 + nc + nm, A]``: boxes as (cx, cy, w, h) in
    input pixels, sigmoid class scores, raw mask coefficients.
    """

    def __init__(
        self,
        nc: int,
        ch: Sequence[int],
        strides: Sequence[float] = (8.0, 16.0, 32.0),
        nm: int = 32,
        npr: int = 256,
        reg_max: int = 16,
        light_cls: bool = False,
    ) -> None:
        super().__init__(strides)
        if nc < 1:
            raise ValueError(f"nc must be >= 1, got {nc}")
        if len(ch) != len(strides):
            raise ValueError(f"got {len(ch)} input levels but {len(strides)} strides")
        self.nc = nc
        self.nl = len(ch)
        self.nm = nm
        self.npr = npr
        self.reg_max = reg_max
        self.no = nc + 4 * reg_max
        c2 = max(16, ch[0] // 4, 4 * reg_max)
        c3 = max(ch[0], min(nc, 100))
        c4 = max(ch[0] // 4, nm)
        self.cv2 = nn.ModuleList(conv_tower(x, c2, 4 * reg_max) for x in ch)
        cls_tower = light_cls_tower if light_cls else conv_tower
        self.cv3 = nn.ModuleList(cls_tower(x, c3, nc) for x in ch)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self.proto = Proto(ch[0], npr, nm)
        self.cv4 = nn.ModuleList(conv_tower(x, c4, nm) for x in ch)

    def bias_init(self) -> None:
        """Prior biases for training from scratch, as in freshly built Ultralytics 8.4 models:
        box-distribution logits 2.0, class logits log(5 / nc / (640 / stride)^2) (~5 objects per 640 image)."""
        with torch.no_grad():
            for box, cls, s in zip(self.cv2, self.cv3, self.level_strides):
                out_bias(box).fill_(2.0)
                out_bias(cls)[: self.nc].fill_(math.log(5 / self.nc / (640 / s) ** 2))

    def decode(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-level raw outputs -> ``[B, 4 + nc, A]`` (xywh pixels, sigmoid scores)."""
        b = feats[0].shape[0]
        x = torch.cat([f.view(b, self.no, -1) for f in feats], 2)
        box, cls = x.split((4 * self.reg_max, self.nc), 1)
        anchors, strides = self.anchors_for(feats)
        dbox = dist2bbox(self.dfl(box), anchors.unsqueeze(0), xywh=True, dim=1) * strides
        return torch.cat((dbox, cls.sigmoid()), 1)

    def inference_towers(self) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
        """The (box, class, mask-coefficient) convolution towers that inference runs, one per level."""
        return self.cv2, self.cv3, self.cv4

    def prototypes(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The mask prototypes [B, nm, H0*2, W0*2] from the head's input maps."""
        return self.proto(xs[0])

    def forward(self, xs: Sequence[torch.Tensor]):
        if len(xs) != self.nl:
            raise ValueError(f"expected {self.nl} feature maps, got {len(xs)}")
        b = xs[0].shape[0]
        protos = self.proto(xs[0])
        mc = torch.cat([self.cv4[i](xs[i]).view(b, self.nm, -1) for i in range(self.nl)], 2)
        feats = [torch.cat((self.cv2[i](xs[i]), self.cv3[i](xs[i])), 1) for i in range(self.nl)]
        if self.training:
            return feats, mc, protos
        return torch.cat((self.decode(feats), mc), 1), protos
