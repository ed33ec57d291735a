"""edgeseg's own checkpoint format and atomic writes."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgeseg.nn import build_model  # noqa: E402
from edgeseg.nn.checkpoint import (  # noqa: E402
    FORMAT_NAME,
    CheckpointFormatError,
    atomic_write,
    atomic_write_with,
    capture_rng_state,
    is_native_checkpoint,
    load_checkpoint,
    load_safetensors,
    make_checkpoint,
    native,
    restore_rng_state,
    save_checkpoint,
    save_safetensors,
)
from edgeseg.nn.load import load_model  # noqa: E402
from shared_paths import SHARED  # noqa: E402

COCO_V8 = SHARED / "models" / "yolov8n-seg-coco-dq.pt"

NAMES = {0: "cat", 1: "dog", 2: "bird"}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(arch="yolo11", scale="n", nc=3, names=NAMES)


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_round_trip(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model, imgsz=320, train_args={"epochs": 3, "lr0": 0.01})
    assert is_native_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # plain tensors and values only
    assert list(raw)[:2] == ["format", "version"] and raw["format"] == FORMAT_NAME
    ck = load_checkpoint(path)
    assert (ck["arch"], ck["scale"], ck["nc"], ck["names"], ck["imgsz"]) == ("yolo11", "n", 3, NAMES, 320)
    assert ck["train_args"] == {"epochs": 3, "lr0": 0.01}
    loaded, info = load_model(path)
    assert (info.format, info.arch, info.scale, info.nc, info.names) == ("edgeseg", "yolo11", "n", 3, NAMES)
    assert info.imgsz == 320 and info.extras["edgeseg_version"]
    _assert_same_weights(model, loaded)


def test_training_state_round_trip(tmp_path, model):
    params = [p for p in model.parameters() if p.requires_grad][:4]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    optimizer.zero_grad()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    rng = capture_rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    path = save_checkpoint(
        tmp_path / "last.pt",
        model,
        epoch=7,
        optimizer=optimizer,
        ema=model,
        updates=1234,
        best_fitness=0.5,
        rng_state=rng,
    )
    ck = load_checkpoint(path)
    assert (ck["epoch"], ck["updates"], ck["best_fitness"]) == (7, 1234, 0.5)
    restored = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    restored.load_state_dict(ck["optimizer"])
    for p in params:
        assert torch.equal(restored.state[p]["momentum_buffer"], optimizer.state[p]["momentum_buffer"])
    assert ck["ema"].keys() == model.state_dict().keys()
    restore_rng_state(ck["rng_state"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_ultralytics_to_native(tmp_path):
    if not COCO_V8.is_file():
        pytest.skip("shared test models not available")
    source, info = load_model(COCO_V8)
    path = save_checkpoint(tmp_path / "coco.pt", source, imgsz=info.imgsz, train_args=info.train_args)
    loaded, info2 = load_model(path)
    assert info2.format == "edgeseg" and info2.names[5] == "bus"
    _assert_same_weights(source, loaded)
    assert not is_native_checkpoint(COCO_V8)


def test_make_checkpoint_rejects_non_plain_values(model):
    with pytest.raises(TypeError, match=r"train_args\['project'\].*(PosixPath|WindowsPath)"):
        make_checkpoint(model, train_args={"project": Path("runs")})
    with pytest.raises(TypeError, match="ndarray"):
        make_checkpoint(model, train_args={"mean": np.zeros(3)})
    with pytest.raises(TypeError, match="unknown checkpoint fields: lr"):
        make_checkpoint(model, lr=0.1)
    with pytest.raises(ValueError, match="names"):
        make_checkpoint(state_dict=model.state_dict(), arch="yolo11", scale="n", nc=4, names=NAMES)
    with pytest.raises(ValueError, match="state_dict"):
        make_checkpoint(arch="yolo11", scale="n", nc=3)


def test_newer_version_refused(tmp_path, model):
    ck = make_checkpoint(model)
    ck["version"] = 99
    torch.save(ck, tmp_path / "future.pt")
    with pytest.raises(CheckpointFormatError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")


def test_missing_fields_refused(tmp_path, model):
    ck = make_checkpoint(model)
    del ck["state_dict"]
    torch.save(ck, tmp_path / "partial.pt")
    with pytest.raises(CheckpointFormatError, match="lacks state_dict"):
        load_model(tmp_path / "partial.pt")


def test_truncated_native_file(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointFormatError):
        load_model(path)


# -- atomic writes ----------------------------------------------------------------------------------


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"

    def failing_writer(fh):
        fh.write(b"partial data" * 1000)
        raise RuntimeError("serializer failed")

    with pytest.raises(RuntimeError, match="serializer failed"):
        atomic_write_with(target, failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as fh:
        fh.write(b"new but incomplete")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_success(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as fh:
        fh.write(b"hello")
    assert target.read_bytes() == b"hello"
    assert list(tmp_path.iterdir()) == [target]
    if os.name == "posix":  # not mkstemp's 0600: the mode a plain open() would give
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_atomic_write_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_with(tmp_path / "nope" / "out.bin", lambda fh: fh.write(b"x"))


def test_save_checkpoint_failing_serializer(tmp_path, model, monkeypatch):
    target = tmp_path / "ckpt.pt"
    real_save = torch.save

    def broken_save(obj, fh):
        real_save({"half": "written"}, fh)  # some bytes reach the file first
        raise OSError("disk full")

    monkeypatch.setattr(native.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, model)
    assert list(tmp_path.iterdir()) == []


# -- optional safetensors ---------------------------------------------------------------------------


def test_safetensors_round_trip(tmp_path, model):
    pytest.importorskip("safetensors")
    path = save_safetensors(tmp_path / "m.safetensors", model, imgsz=[320, 320])
    ck = load_safetensors(path)
    assert (ck["arch"], ck["scale"], ck["nc"], ck["names"], ck["imgsz"]) == ("yolo11", "n", 3, NAMES, [320, 320])
    loaded, info = load_model(path)
    assert info.format == "safetensors"
    _assert_same_weights(model, loaded)


def test_safetensors_missing_package_message(tmp_path, model, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_safetensors(name, *args, **kwargs):
        if name == "safetensors" or name.startswith("safetensors."):
            raise ImportError("no safetensors")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    with pytest.raises(ImportError, match="pip install safetensors"):
        save_safetensors(tmp_path / "m.safetensors", model)
