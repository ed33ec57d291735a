"""YOLOv8-seg / YOLO11-seg / YOLO26-seg architectures: sizes, names, shapes and numerics (YOLO26 in detail:
test_nn_yolo26.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from edgeseg.nn import MODEL_REGISTRY, SegmentationModel, build_model, list_models  # noqa: E402
from edgeseg.nn.head import make_anchors  # noqa: E402

DATA = Path(__file__).parent / "data"

# Parameter counts of Ultralytics 8.4 models at nc=80 (model.parameters(), DFL included).
ULTRALYTICS_PARAMS = {
    "yolov8n-seg": 3_409_968,
    "yolov8s-seg": 11_821_056,
    "yolov8m-seg": 27_285_968,
    "yolov8l-seg": 45_997_728,
    "yolov8x-seg": 71_827_888,
    "yolo11n-seg": 2_876_848,
    "yolo11s-seg": 10_113_248,
    "yolo11m-seg": 22_420_896,
    "yolo11l-seg": 27_678_368,
    "yolo11x-seg": 62_142_656,
    # Ultralytics 8.4.190, both YOLO26 heads and the semantic branch included (../shared/models/SOURCES.md)
    "yolo26n-seg": 3_126_280,
    "yolo26s-seg": 11_505_800,
    "yolo26m-seg": 27_112_072,
    "yolo26l-seg": 31_515_528,
    "yolo26x-seg": 70_693_800,
}


def _meta_model(name: str, **kw) -> SegmentationModel:
    with torch.device("meta"):
        return build_model(name, **kw)


@pytest.fixture(scope="module")
def v8n():
    torch.manual_seed(0)
    return build_model("yolov8n-seg").eval()


@pytest.fixture(scope="module")
def v11n():
    torch.manual_seed(0)
    return build_model("yolo11n-seg").eval()


@pytest.mark.parametrize("name", sorted(ULTRALYTICS_PARAMS))
def test_parameter_counts_match_ultralytics(name):
    model = _meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == ULTRALYTICS_PARAMS[name]


def test_registry_lists_all_fifteen_models():
    # the fifteen Ultralytics models plus edgeseg's own tiny "t" scale (the built-in demo model)
    assert list_models() == sorted([*ULTRALYTICS_PARAMS, "yolov8t-seg"])
    assert set(MODEL_REGISTRY) - {"yolov8t-seg"} == set(ULTRALYTICS_PARAMS)


def test_tiny_demo_scale():
    model = build_model("yolov8t-seg", nc=4)
    assert model.model[0].conv.out_channels == 8  # half of yolov8n's stem
    assert sum(p.numel() for p in model.parameters()) == 1_032_516


@pytest.mark.parametrize(
    ("name", "json_file", "head_index"),
    [("yolov8n-seg", "ultralytics_keys_v8n.json", 22), ("yolo11n-seg", "ultralytics_keys_v11n.json", 23)],
)
def test_state_dict_keys_and_shapes_match_ultralytics(name, json_file, head_index):
    ref = json.loads((DATA / json_file).read_text())
    model = _meta_model(name)
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == ref["keys"]
    assert sum(p.numel() for p in model.parameters()) == ref["num_parameters"]
    assert f"model.{head_index}.proto.cv1.conv.weight" in dict(ours)


def test_model_attributes(v8n, v11n):
    assert (v8n.arch, v8n.scale, v8n.nc) == ("yolov8", "n", 80)
    assert (v11n.arch, v11n.scale, v11n.nc) == ("yolo11", "n", 80)
    assert v8n.names == {i: str(i) for i in range(80)}
    assert v8n.stride.tolist() == [8.0, 16.0, 32.0]
    assert len(v8n.model) == 23 and len(v11n.model) == 24


@pytest.mark.parametrize("fixture", ["v8n", "v11n"])
@pytest.mark.parametrize(("size", "anchors"), [(640, 8400), (320, 2100)])
def test_eval_output_shapes(request, fixture, size, anchors):
    model = request.getfixturevalue(fixture)
    with torch.no_grad():
        y, protos = model(torch.rand(1, 3, size, size))
    assert y.shape == (1, 4 + 80 + 32, anchors)
    assert protos.shape == (1, 32, size // 4, size // 4)
    scores = y[:, 4:84]
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0


@pytest.mark.parametrize("name", ["yolov8n-seg", "yolo11n-seg"])
def test_training_output_shapes(name):
    torch.manual_seed(0)
    model = build_model(name, nc=80).train()
    feats, mc, protos = model(torch.rand(2, 3, 256, 192))
    assert [tuple(f.shape) for f in feats] == [(2, 144, 32, 24), (2, 144, 16, 12), (2, 144, 8, 6)]
    assert mc.shape == (2, 32, 32 * 24 + 16 * 12 + 8 * 6)
    assert protos.shape == (2, 32, 64, 48)
    (sum(f.mean() for f in feats) + mc.mean() + protos.mean()).backward()
    assert model.model[0].conv.weight.grad is not None
    assert model.head.dfl.conv.weight.grad is None


def test_non_square_input_and_anchor_cache(v8n):
    with torch.no_grad():
        y1, _ = v8n(torch.rand(1, 3, 192, 256))
        y2, _ = v8n(torch.rand(1, 3, 320, 320))
        y3, _ = v8n(torch.rand(1, 3, 192, 256))
    assert y1.shape[-1] == y3.shape[-1] == 24 * 32 + 12 * 16 + 6 * 8
    assert y2.shape[-1] == 2100


def test_make_anchors_order():
    points, strides = make_anchors([(2, 3), (1, 2)], [8, 16])
    assert points.tolist() == [
        [0.5, 0.5],
        [1.5, 0.5],
        [2.5, 0.5],
        [0.5, 1.5],
        [1.5, 1.5],
        [2.5, 1.5],  # level 0, row-major
        [0.5, 0.5],
        [1.5, 0.5],  # level 1
    ]
    assert strides.view(-1).tolist() == [8.0] * 6 + [16.0] * 2


def test_eval_decoding_matches_raw_outputs(v11n):
    """Eval output = DFL expectation around cell centres * stride, sigmoid scores, raw coefficients."""
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        y, protos = v11n(x)
        v11n.head.training = True  # raw outputs, BatchNorm layers stay in eval mode
        try:
            feats, mc, protos_raw = v11n(x)
        finally:
            v11n.head.training = False
    raw = torch.cat([f.flatten(2) for f in feats], 2)  # [1, 144, A]
    box_logits, cls_logits = raw[:, :64], raw[:, 64:]
    probs = box_logits.view(1, 4, 16, -1).softmax(2)
    dist = (probs * torch.arange(16.0).view(1, 1, 16, 1)).sum(2)  # l, t, r, b in grid units
    points, strides = make_anchors([tuple(f.shape[2:]) for f in feats], [8, 16, 32])
    cx = points[:, 0] + (dist[0, 2] - dist[0, 0]) / 2
    cy = points[:, 1] + (dist[0, 3] - dist[0, 1]) / 2
    w = dist[0, 0] + dist[0, 2]
    h = dist[0, 1] + dist[0, 3]
    expected = torch.stack([cx, cy, w, h]) * strides.view(1, -1)
    torch.testing.assert_close(y[0, :4], expected, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(y[:, 4:84], cls_logits.sigmoid())
    torch.testing.assert_close(y[:, 84:], mc)
    torch.testing.assert_close(protos, protos_raw)


def _randomise_batchnorm(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


@pytest.mark.parametrize("name", ["yolov8n-seg", "yolo11n-seg"])
def test_fuse_keeps_eval_output(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    _randomise_batchnorm(model)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        y, p = model(x)
        assert model.fuse() is model
        yf, pf = model(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert (yf - y).abs().max().item() < 1e-4
    assert (pf - p).abs().max().item() < 1e-4


def test_head_init_and_dfl(v8n):
    head = v8n.head
    assert torch.equal(head.dfl.conv.weight.view(-1), torch.arange(16.0))
    assert not head.dfl.conv.weight.requires_grad
    for box, cls, s in zip(head.cv2, head.cv3, (8, 16, 32)):
        assert torch.all(box[-1].bias == 2.0)
        assert torch.allclose(cls[-1].bias, torch.full((80,), math.log(5 / 80 / (640 / s) ** 2)))
    bn = v8n.model[0].bn
    assert (bn.eps, bn.momentum) == (1e-3, 0.03)


@pytest.mark.parametrize("name", ["yolov8n-seg", "yolo11n-seg"])
def test_custom_number_of_classes(name):
    names = ["cat", "dog", "bird"]
    model = build_model(name, nc=3, names=names).eval()
    assert model.nc == 3 and model.names == {0: "cat", 1: "dog", 2: "bird"}
    with torch.no_grad():
        y, protos = model(torch.rand(1, 3, 64, 96))
    assert y.shape == (1, 4 + 3 + 32, 8 * 12 + 4 * 6 + 2 * 3)
    assert protos.shape == (1, 32, 16, 24)
    # only the class branch depends on nc (its width is max(P3 channels, min(nc, 100)))
    c80 = _meta_model(name).state_dict()
    c3 = _meta_model(name, nc=3).state_dict()
    assert c80.keys() == c3.keys()
    head = len(model.model) - 1
    differing = {k for k in c80 if c80[k].shape != c3[k].shape}
    assert differing and all(k.startswith(f"model.{head}.cv3.") for k in differing)
    assert all(c3[f"model.{head}.cv3.{i}.2.bias"].shape == (3,) for i in range(3))


def test_build_by_arch_and_scale():
    a = _meta_model("yolo11s-seg")
    with torch.device("meta"):
        b = build_model(arch="yolo11", scale="s")
    assert (b.arch, b.scale) == ("yolo11", "s")
    assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]
    assert _meta_model("YOLOv8m-seg.pt").scale == "m"


def test_c3k_forced_for_large_yolo11_scales():
    from edgeseg.nn.modules import Bottleneck, C3k

    for scale, inner in (("s", Bottleneck), ("m", C3k), ("x", C3k)):
        model = _meta_model(f"yolo11{scale}-seg")
        assert isinstance(model.model[2].m[0], inner)  # declared c3k=False in the layer list


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "yolov9n-seg"}, "yolo11n-seg.*yolov8x-seg"),
        ({"name": "yolov8q-seg"}, "valid names"),
        ({"arch": "yolov5", "scale": "n"}, "yolo11, yolo26, yolov8"),
        ({"arch": "yolov8", "scale": "q"}, "n, s, m, l, x"),
        ({"arch": "yolov8"}, "arch= and scale="),
        ({"name": "yolov8n-seg", "arch": "yolov8"}, "not both"),
        ({"name": "yolov8n-seg", "nc": 0}, "nc"),
        ({"name": "yolov8n-seg", "nc": 2, "names": ["a"]}, "names"),
        ({"name": "yolov8n-seg", "nc": 2, "names": "ab"}, "names"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match), torch.device("meta"):
        build_model(**kwargs)


def test_bad_input_shape_raises(v8n):
    with pytest.raises(ValueError, match="multiples of 32"):
        v8n(torch.rand(1, 3, 100, 128))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        v8n(torch.rand(3, 64, 64))
