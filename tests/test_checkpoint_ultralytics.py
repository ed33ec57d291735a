"""Reading Ultralytics YOLOv8-seg / YOLO11-seg .pt checkpoints without Ultralytics."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")

from edgeseg.nn import ARCHITECTURES, build_model  # noqa: E402
from edgeseg.nn.checkpoint import (  # noqa: E402
    CheckpointFormatError,
    StateDictMismatchError,
    read_torch_zip,
    read_ultralytics_checkpoint,
)
from edgeseg.nn.checkpoint.safe_unpickle import StandIn  # noqa: E402
from edgeseg.nn.checkpoint.ultralytics_pt import (  # noqa: E402
    detect_arch,
    detect_scale,
    parse_ultralytics_object,
    stand_in_state_dict,
)
from edgeseg.nn.load import load_model, load_weights  # noqa: E402
from shared_paths import SHARED  # noqa: E402

MODELS = SHARED / "models"
RAND_V8 = MODELS / "yolov8n-seg-rand.pt"
RAND_V11 = MODELS / "yolo11n-seg-rand.pt"
COCO_V8 = MODELS / "yolov8n-seg-coco-dq.pt"

needs_models = pytest.mark.skipif(
    not all(p.is_file() for p in (RAND_V8, RAND_V11, COCO_V8)), reason="shared test models not available"
)

CASES = [
    (RAND_V8, "yolov8", 3_409_968),
    (RAND_V11, "yolo11", 2_876_848),
    (COCO_V8, "yolov8", 3_409_968),
]


class _RefuseUltralytics:
    """A meta-path finder that fails the test if anything tries to import ultralytics."""

    def find_spec(self, name, path=None, target=None):
        if name == "ultralytics" or name.startswith("ultralytics."):
            raise AssertionError(f"edgeseg tried to import {name}")
        return None


@pytest.fixture
def no_ultralytics(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", [_RefuseUltralytics(), *sys.meta_path])
    yield
    assert not any(m == "ultralytics" or m.startswith("ultralytics.") for m in sys.modules)


@needs_models
@pytest.mark.parametrize(("path", "arch", "n_params"), CASES, ids=lambda v: getattr(v, "name", None))
def test_load_model_detects_architecture(no_ultralytics, path, arch, n_params):
    model, info = load_model(path)
    assert (info.format, info.arch, info.scale, info.nc) == ("ultralytics", arch, "n", 80)
    assert (model.arch, model.scale, model.nc) == (arch, "n", 80)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert info.imgsz == 640
    assert info.extras["version"].startswith("8.")
    assert info.extras["stride"] == (8.0, 16.0, 32.0)
    assert all(t.dtype == torch.float32 for t in model.state_dict().values() if t.is_floating_point())
    with torch.no_grad():
        y, protos = model(torch.zeros(1, 3, 64, 64))
    assert tuple(y.shape) == (1, 4 + 80 + 32, 84) and tuple(protos.shape) == (1, 32, 16, 16)


@needs_models
def test_class_names():
    _, info = load_model(COCO_V8)
    assert info.names[0] == "person" and info.names[5] == "bus" and len(info.names) == 80
    assert info.train_args["data"] == "coco.yaml"
    assert info.extras["epoch"] == -1
    _, info = load_model(RAND_V11)
    assert info.names == {i: str(i) for i in range(80)}
    assert info.train_args is None  # Model.save writes no train_args


@needs_models
@pytest.mark.parametrize("path", [RAND_V8, RAND_V11, COCO_V8], ids=lambda p: p.name)
def test_weights_equal_the_file(path):
    raw = stand_in_state_dict(read_torch_zip(path)["model"])
    model, _ = load_model(path)
    loaded = model.state_dict()
    assert set(raw) == set(loaded)
    assert raw["model.0.conv.weight"].dtype == torch.float16  # Ultralytics stores fp16
    for key, tensor in raw.items():
        expected = tensor.float() if tensor.is_floating_point() else tensor
        assert loaded[key].dtype == expected.dtype, key
        assert torch.equal(loaded[key], expected), key
    # independent of our reader: every Ultralytics DFL conv holds arange(16)
    head = max(int(k.split(".")[1]) for k in loaded)
    dfl = loaded[f"model.{head}.dfl.conv.weight"].flatten()
    assert torch.equal(dfl, torch.arange(16, dtype=torch.float32))


@needs_models
def test_read_ultralytics_checkpoint_fields():
    ck = read_ultralytics_checkpoint(RAND_V11)
    assert (ck.arch, ck.scale, ck.nc, ck.source_key) == ("yolo11", "n", 80, "model")
    assert ck.yaml["yaml_file"] == "yolo11n-seg.yaml"
    assert ck.args["task"] == "segment"
    assert ck.metadata["license"].startswith("AGPL")


@needs_models
def test_ema_used_when_model_is_none():
    obj = read_torch_zip(RAND_V8)
    obj["ema"], obj["model"] = obj["model"], None
    ck = parse_ultralytics_object(obj, RAND_V8)
    assert ck.source_key == "ema" and ck.arch == "yolov8"
    obj["ema"] = None
    with pytest.raises(CheckpointFormatError, match="neither"):
        parse_ultralytics_object(obj, RAND_V8)


@needs_models
def test_not_a_segmentation_model():
    obj = read_torch_zip(RAND_V8)
    layers = obj["model"].state["_modules"]["model"].state["_modules"]
    layers.pop(max(layers, key=int))  # drop the Segment head
    with pytest.raises(CheckpointFormatError, match="Segment head"):
        parse_ultralytics_object(obj, RAND_V8)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_detect_scale_every_scale(arch):
    for scale in ARCHITECTURES[arch].scales:
        with torch.device("meta"):
            sd = build_model(arch=arch, scale=scale).state_dict()
        assert detect_scale(arch, sd) == scale, (arch, scale)
        # a yaml hint is used only if the weights allow it
        assert detect_scale(arch, sd, hint="n" if scale != "n" else "x") == scale


def test_detect_arch():
    assert detect_arch({"Conv", "C2f", "SPPF", "Segment"}) == "yolov8"
    assert detect_arch({"Conv", "C3k2", "C2PSA", "Segment"}) == "yolo11"
    assert detect_arch({"Conv", "C3k2", "C2PSA", "Segment26", "Proto26"}) == "yolo26"
    with pytest.raises(CheckpointFormatError, match="architecture"):
        detect_arch({"Conv", "Segment"})


def test_cyclic_module_tree_refused():
    a = type("Loop", (StandIn,), {"global_name": "x.Loop"})()
    a.__setstate__({"_parameters": {}, "_buffers": {}, "_modules": {"self": a}})
    with pytest.raises(CheckpointFormatError, match="cyclic"):
        stand_in_state_dict(a)


@pytest.mark.parametrize("arch", ["yolov8", "yolo11", "yolo26"])
def test_bare_state_dict_file(tmp_path, arch):
    torch.manual_seed(0)
    source = build_model(arch=arch, scale="n", nc=3)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    model, info = load_model(path)
    assert (info.format, info.arch, info.scale, info.nc) == ("state_dict", arch, "n", 3)
    for key, tensor in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], tensor), key


def test_mismatch_is_reported_clearly():
    model = build_model(arch="yolov8", scale="n", nc=2)
    sd = dict(model.state_dict())
    sd.pop("model.0.conv.weight")
    sd["model.99.extra"] = torch.zeros(1)
    sd["model.1.conv.weight"] = torch.zeros(1, 2, 3, 3)
    with pytest.raises(StateDictMismatchError) as info:
        load_weights(model, sd, "test.pt")
    message = str(info.value)
    assert "missing keys: model.0.conv.weight" in message
    assert "unexpected keys: model.99.extra" in message
    assert "model.1.conv.weight (1, 2, 3, 3) vs (32, 16, 3, 3)" in message
    assert info.value.missing == ["model.0.conv.weight"]
