"""YOLO26-seg in edgeseg.nn: sizes, Ultralytics checkpoints, raw outputs of both heads, top-k, fuse.

The reference numbers come from Ultralytics 8.4.190 through the files in ../shared: the seeded random
checkpoint's raw train-mode outputs stored in the YOLO26 loss fixture (both branches, prototypes, semantic
logits), and Ultralytics' own exports of the shapes checkpoint (end-to-end ONNX in fp32; one-to-many ONNX and
OpenVINO with fp16 weights). Parameter counts are those listed in ../shared/models/SOURCES.md.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgeseg.nn import build_model  # noqa: E402
from edgeseg.nn.head26 import Segment26Head, select_topk  # noqa: E402
from edgeseg.nn.load import load_model  # noqa: E402
from shared_paths import SHARED  # noqa: E402

MODELS = SHARED / "models"
FIXTURES = SHARED / "fixtures"
RAND = MODELS / "yolo26n-seg-rand.pt"
SHAPES = MODELS / "yolo26n-seg-shapes.pt"
needs_shared = pytest.mark.skipif(not RAND.exists(), reason="../shared/models is not available")

# Ultralytics 8.4.190 at nc=80: all parameters, of which the one-to-one branch, of which the semantic branch,
# and the count after fuse() with the one-to-many head in use (BN folded, one2one and semseg removed).
PARAMS = {
    "n": (3_126_280, 315_052, 79_184, 2_722_980),
    "s": (11_505_800, 786_140, 305_744, 10_396_300),
    "m": (27_112_072, 2_315_868, 1_201_232, 23_569_148),
    "l": (31_515_528, 2_315_868, 1_201_232, 27_965_436),
    "x": (70_693_800, 5_138_652, 2_686_544, 62_819_132),
}


def _count(params) -> int:
    return sum(p.numel() for p in params)


@pytest.mark.parametrize("scale", sorted(PARAMS))
def test_parameter_counts_equal_ultralytics(scale):
    total, one2one, semseg, fused = PARAMS[scale]
    with torch.device("meta"):
        model = build_model(f"yolo26{scale}-seg")
    head = model.head
    assert isinstance(head, Segment26Head)
    assert _count(model.parameters()) == total
    assert _count(p for k, p in head.named_parameters() if k.startswith("one2one_")) == one2one
    assert head.proto.semseg is not None
    assert _count(head.proto.semseg.parameters()) == semseg
    model.eval()
    head.end2end = False  # Ultralytics' default after loading: the one-to-many head
    model.fuse()
    assert _count(model.parameters()) == fused


def test_fused_end_to_end_model_keeps_only_the_one_to_one_branch():
    with torch.device("meta"):
        model = build_model("yolo26n-seg").eval()
    one2one = PARAMS["n"][1]
    one2many = _count(p for k, p in model.head.named_parameters() if k.split(".")[0] in ("cv2", "cv3", "cv4"))
    assert one2many == one2one  # the two branches are the same shape
    model.fuse()
    assert model.end2end
    assert model.head.cv2 is None and model.head.one2one_cv2 is not None and model.head.proto.semseg is None


def _load_case26():
    batch = torch.load(FIXTURES / "loss_case_batch.pt", weights_only=True)
    batch.update(torch.load(FIXTURES / "loss_case_yolo26n-seg_bntrain.pt", weights_only=True))
    batch["img"] = batch["img"].float() / 255
    return batch


@pytest.fixture(scope="module")
def shapes_model():
    if not SHAPES.exists():
        pytest.skip("../shared/models is not available")
    model, info = load_model(SHAPES)
    assert (info.arch, info.scale, info.nc) == ("yolo26", "n", 4)
    return model


@needs_shared
def test_ultralytics_checkpoints_load_strictly():
    model, info = load_model(RAND)
    assert (info.format, info.arch, info.scale, info.nc) == ("ultralytics", "yolo26", "n", 80)
    assert _count(model.parameters()) == PARAMS["n"][0]
    shapes, info = load_model(SHAPES)
    assert info.names == {0: "circle", 1: "square", 2: "triangle", 3: "star"}
    assert _count(shapes.parameters()) == 3_054_420  # SOURCES.md: nc 4
    assert shapes.end2end  # edgeseg's default for YOLO26: the NMS-free head


@needs_shared
@pytest.mark.skipif(not (FIXTURES / "loss_case_yolo26n-seg_bntrain.pt").exists(), reason="no YOLO26 fixture")
def test_train_mode_raw_outputs_equal_ultralytics_on_the_random_checkpoint(tmp_path):
    case = _load_case26()
    # The forward pass runs in a child process limited to oneDNN's AVX2 kernels (DNNL_MAX_CPU_ISA), as the
    # fixture was made: on an AVX-512 CPU oneDNN's AVX-512 convolutions sum in another order and move these
    # train-mode outputs (BatchNorm on batch statistics of an untrained net) by up to 5e-4 (2e-5 with AVX2).
    # The variable is set for that child only: OpenVINO's CPU plugin reads it too and then fails to compile.
    script = f"""
import torch
from edgeseg.nn.load import load_model
torch.set_num_threads(1)
case = torch.load({str(FIXTURES / "loss_case_batch.pt")!r}, weights_only=True)
model, _ = load_model({str(RAND)!r})
model.train()
with torch.no_grad():
    out = model(case["img"].float() / 255)
torch.save({{b: {{k: out[b][k] for k in ("boxes", "scores", "mask_coefficient")}} | {{"proto": out[b]["proto"]}}
            for b in out}}, {str(tmp_path / "out.pt")!r})
"""
    env = dict(os.environ, DNNL_MAX_CPU_ISA="AVX2")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert set(out) == {"one2many", "one2one"}
    for branch in ("one2many", "one2one"):
        for key in ("boxes", "scores", "mask_coefficient"):
            torch.testing.assert_close(out[branch][key], case[branch][key], atol=1e-4, rtol=1e-4)
        protos, semantic = out[branch]["proto"]
        torch.testing.assert_close(protos, case["proto"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(semantic, case["semantic"], atol=1e-4, rtol=1e-4)


@needs_shared
def test_train_mode_one_to_one_branch_sees_detached_features():
    case = _load_case26()
    model, _ = load_model(RAND)
    model.train()
    out = model(case["img"][:1])
    assert [list(f.shape)[1:] for f in out["one2one"]["feats"]] == [s[1:] for s in case["feats_shapes"]]
    # the one-to-one branch sees detached features and prototypes
    assert out["one2one"]["proto"][0].grad_fn is None and out["one2many"]["proto"][0].grad_fn is not None
    assert all(f.grad_fn is None for f in out["one2one"]["feats"])


def _val_images(n: int) -> list[np.ndarray]:
    from PIL import Image

    files = sorted((SHARED / "data" / "shapes-seg" / "images" / "val").glob("*.jpg"))[:n]
    files.append(SHARED / "data" / "images" / "bus.jpg")
    out = []
    for f in files:
        im = np.asarray(Image.open(f).convert("RGB").resize((320, 320)), dtype=np.float32) / 255
        out.append(np.ascontiguousarray(im.transpose(2, 0, 1)[None]))
    return out


@needs_shared
def test_end_to_end_head_equals_ultralytics_end_to_end_onnx(shapes_model):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(MODELS / "yolo26n-seg-shapes.onnx"), providers=["CPUExecutionProvider"])
    compared = 0
    for x in _val_images(6):
        with torch.no_grad():
            rows, protos = shapes_model(torch.from_numpy(x))
        ref_rows, ref_protos = session.run(None, {"images": x})
        assert rows.shape == ref_rows.shape == (1, 300, 38)
        np.testing.assert_allclose(protos.numpy(), ref_protos, atol=1e-4)
        ours, ref = rows[0].numpy(), ref_rows[0]
        # Rows below a score of 0.002 are near-ties that the two engines may order differently; every row
        # above it must be the same (anchor, class) pair with the same values.
        keep = ref[:, 4] >= 2e-3
        compared += int(keep.sum())
        np.testing.assert_array_equal(ours[keep, 5], ref[keep, 5])  # classes
        np.testing.assert_allclose(ours[keep, 4], ref[keep, 4], atol=1e-4)  # scores
        np.testing.assert_allclose(ours[keep, 6:], ref[keep, 6:], atol=1e-4)  # coefficients
        np.testing.assert_allclose(ours[keep, :4], ref[keep, :4], atol=1e-3)  # boxes, input pixels (~1e-6 rel.)
    assert compared > 300  # of 7 x 300 rows


@needs_shared
@pytest.mark.parametrize("engine", ["onnx", "openvino"])
def test_one_to_many_head_equals_ultralytics_fp16_exports(shapes_model, engine):
    """The one-to-many exports in ../shared hold fp16 weights: SOURCES.md measured them against Ultralytics'
    fp32 torch model at <= 0.21 px, 4.3e-4 in class scores and 0.012 in prototypes; ours must be as close."""
    if engine == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(
            str(MODELS / "yolo26n-seg-shapes-one2many.onnx"), providers=["CPUExecutionProvider"]
        )

        def run(x):
            return session.run(None, {"images": x})
    else:
        ov = pytest.importorskip("openvino")
        compiled = ov.Core().compile_model(  # f32: on a CPU with bf16 support OpenVINO would compute in bf16
            str(MODELS / "yolo26n-seg-shapes_openvino_model" / "yolo26n-seg-shapes.xml"),
            "CPU",
            {"INFERENCE_PRECISION_HINT": "f32"},
        )

        def run(x):
            result = compiled(x)
            return [result[compiled.output(i)] for i in range(2)]

    shapes_model.head.end2end = False
    try:
        for x in _val_images(2):
            with torch.no_grad():
                y, protos = shapes_model(torch.from_numpy(x))
            ref, ref_protos = run(x)
            assert y.shape == ref.shape == (1, 40, 2100)
            diff = np.abs(y.numpy() - ref)[0]
            assert diff[:4].max() < 0.25 and diff[4:8].max() < 5e-4 and diff[8:].max() < 0.02
            assert np.abs(protos.numpy() - ref_protos).max() < 0.02
    finally:
        shapes_model.head.end2end = True


def _brute_force_topk(rows: np.ndarray, nc: int, k: int) -> np.ndarray:
    """The end-to-end selection written out with loops: best k anchors by max class score, then best k pairs."""
    scores = rows[:, 4 : 4 + nc]
    anchors = sorted(range(len(rows)), key=lambda a: -scores[a].max())[:k]
    pairs = sorted(((scores[a, c], a, c) for a in anchors for c in range(nc)), key=lambda t: -t[0])[:k]
    return np.array([[*rows[a, :4], s, c, *rows[a, 4 + nc :]] for s, a, c in pairs], dtype=np.float32)


@pytest.mark.parametrize(("anchors", "nc", "max_det"), [(50, 3, 10), (40, 1, 40), (30, 5, 300)])
def test_select_topk_equals_a_brute_force_selection(anchors, nc, max_det):
    gen = torch.Generator().manual_seed(anchors + nc)
    rows = torch.rand(2, anchors, 4 + nc + 3, generator=gen)
    out = select_topk(rows, nc, max_det)
    k = min(max_det, anchors)
    assert out.shape == (2, k, 6 + 3)
    for b in range(2):
        np.testing.assert_allclose(out[b].numpy(), _brute_force_topk(rows[b].numpy(), nc, k), rtol=0, atol=0)


def test_select_topk_keeps_one_anchor_with_several_classes():
    rows = torch.zeros(1, 4, 4 + 2 + 1)
    rows[0, 0, 4:6] = torch.tensor([0.9, 0.8])  # one anchor strong in both classes
    rows[0, 1, 4:6] = torch.tensor([0.1, 0.7])
    out = select_topk(rows, 2, 3)[0]
    assert out[:, 4].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert out[:, 5].tolist() == [0.0, 1.0, 1.0]


def test_select_topk_rejects_too_few_channels():
    with pytest.raises(ValueError, match="fewer than 4 \\+ nc"):
        select_topk(torch.zeros(1, 5, 6), 4, 10)


def test_eval_layouts_and_small_inputs():
    torch.manual_seed(0)
    model = build_model("yolo26n-seg", nc=3).eval()
    x = torch.rand(1, 3, 64, 96)  # A = 8*12 + 4*6 + 2*3 = 126 anchors < max_det
    with torch.no_grad():
        rows, protos = model(x)
        assert rows.shape == (1, 126, 6 + 32) and protos.shape == (1, 32, 16, 24)
        model.head.topk_in_graph = False
        dense, _ = model(x)
        assert dense.shape == (1, 4 + 3 + 32, 126)
        # the top-k of the dense one-to-one output (cx, cy, w, h) is the end-to-end output (x1, y1, x2, y2)
        xyxy = torch.cat((dense[:, :2] - dense[:, 2:4] / 2, dense[:, :2] + dense[:, 2:4] / 2, dense[:, 4:]), 1)
        torch.testing.assert_close(select_topk(xyxy.permute(0, 2, 1), 3, 300), rows)
        model.head.topk_in_graph = True
        model.head.end2end = False
        one2many, _ = model(x)
        assert one2many.shape == (1, 4 + 3 + 32, 126)
    model.head.end2end = True
    model.head.max_det = 20
    with torch.no_grad():
        assert model(x)[0].shape == (1, 20, 38)


def test_fuse_keeps_the_end_to_end_output_and_refuses_the_removed_branch():
    torch.manual_seed(1)
    model = build_model("yolo26n-seg", nc=5).eval()
    for module in model.modules():  # non-trivial BatchNorm statistics, so that folding them is tested
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        before = model(x)
        model.head.topk_in_graph = False
        dense_before = model(x)[0]
        model.fuse()
        dense_after = model(x)[0]
        model.head.topk_in_graph = True
        after = model(x)
    # every anchor of the one-to-one branch within float rounding; the selected rows' scores likewise (an
    # untrained net has near-ties, whose order float rounding may swap, so rows are compared by score)
    torch.testing.assert_close(dense_after, dense_before, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after[0][..., 4], before[0][..., 4], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after[1], before[1], atol=1e-4, rtol=1e-4)
    model.head.end2end = False
    with pytest.raises(RuntimeError, match="removed by fuse"):
        model(x)


def test_one_to_one_loss_does_not_train_the_backbone():
    torch.manual_seed(0)
    model = build_model("yolo26n-seg", nc=2).train()
    out = model(torch.rand(2, 3, 64, 64))
    o2o = out["one2one"]
    (o2o["boxes"].sum() + o2o["scores"].sum() + o2o["mask_coefficient"].sum()).backward()
    assert model.model[0].conv.weight.grad is None  # the backbone got nothing
    assert model.head.one2one_cv3[0][2].weight.grad is not None
    assert model.head.cv3[0][2].weight.grad is None


def test_bad_max_det_is_a_value_error():
    with pytest.raises(ValueError, match="max_det"):
        Segment26Head(4, (64, 128, 256), max_det=0)
