"""Torch backend: .pt checkpoints run through the same pipeline as ONNX models; torch stays lazy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from shared_paths import SHARED

REPO = Path(__file__).resolve().parents[1]
MODELS = SHARED / "models"
BUS = SHARED / "data" / "images" / "bus.jpg"
COCO_PT = MODELS / "yolov8n-seg-coco-dq.pt"
COCO_ONNX = MODELS / "yolov8n-seg-coco-dq.onnx"
V8_RAND = MODELS / "yolov8n-seg-rand.pt"
V11_RAND = MODELS / "yolo11n-seg-rand.pt"

needs_coco = pytest.mark.skipif(
    not (COCO_PT.is_file() and COCO_ONNX.is_file() and BUS.is_file()), reason="shared test models/images not available"
)


def _run_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


def test_pt_suffix_selects_torch_backend():
    from edgeseg.backends import select_backend

    cls = select_backend("model.pt")
    assert cls.__name__ == "TorchBackend" and cls.name == "torch"
    assert select_backend("model.onnx", "pytorch") is cls


@pytest.mark.skipif(not COCO_ONNX.is_file(), reason="shared test models not available")
def test_importing_edgeseg_and_running_onnx_does_not_import_torch():
    proc = _run_python(f"""
        import sys
        import edgeseg
        from edgeseg import Segmenter
        import edgeseg.backends, edgeseg.cli
        seg = Segmenter({str(COCO_ONNX)!r})
        seg.warmup()
        assert "torch" not in sys.modules, "torch imported"
        import edgeseg.backends.torch_backend  # the module itself imports torch lazily too
        assert "torch" not in sys.modules, "torch imported by torch_backend"
        print("OK")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_runtime_cli_and_validation_work_with_torch_unimportable():
    """The modules that import torch lazily (cli.train, backends.torch_backend, val.validator) load, and
    ONNX validation runs, in a process where importing torch fails."""
    coco8 = SHARED / "data" / "coco8-seg" / "coco8-seg.yaml"
    if not (COCO_ONNX.is_file() and coco8.is_file()):
        pytest.skip("shared model/data not available")
    proc = _run_python(f"""
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is not installed (blocked by the test)")

        sys.meta_path.insert(0, NoTorch())
        import edgeseg.cli.train, edgeseg.backends.torch_backend, edgeseg.val.validator
        from edgeseg.val.validator import validate
        r = validate({str(COCO_ONNX)!r}, {str(coco8)!r}, imgsz=640, progress=False)
        assert r.n_images == 4 and r.mask.map50 > 0.3, r.summary()
        print("OK")
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OK" in proc.stdout


def test_missing_torch_names_the_install_command(tmp_path):
    fake = tmp_path / "m.pt"
    fake.write_bytes(b"x")
    proc = _run_python(f"""
        import sys
        sys.modules["torch"] = None  # simulate torch not installed
        from edgeseg.errors import BackendNotInstalledError
        from edgeseg.backends.torch_backend import TorchBackend
        try:
            TorchBackend({str(fake)!r})
        except BackendNotInstalledError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        else:
            raise SystemExit("no error")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "edgeseg[torch]" in proc.stdout and "torch==2.13.0" in proc.stdout


try:
    import torch
except ImportError:  # the tests above run without torch; the ones below need it
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


@needs_torch
@needs_coco
def test_backend_metadata_and_outputs_match_ultralytics_onnx():
    import onnxruntime as ort

    from edgeseg.backends.torch_backend import TorchBackend
    from edgeseg.image_io import read_image
    from edgeseg.ops.letterbox import letterbox

    backend = TorchBackend(COCO_PT, threads=2)
    assert backend.input_spec.shape == (640, 640) and backend.input_spec.layout == "nchw"
    assert backend.input_spec.dtype == "float32" and backend.input_spec.name == "images"
    meta = backend.metadata
    assert meta.task == "segment" and meta.stride == 32 and meta.imgsz == (640, 640)
    assert meta.nc == 80 and meta.names[0] == "person" and meta.names[5] == "bus"
    assert backend.output_layout.nc == 80 and backend.output_layout.nm == 32
    assert backend.describe()["device"] == "cpu"

    blob, _ = letterbox(read_image(BUS), 640)
    ours = backend.infer(blob)
    assert all(isinstance(o, np.ndarray) and o.dtype == np.float32 for o in ours)
    theirs = ort.InferenceSession(str(COCO_ONNX), providers=["CPUExecutionProvider"]).run(None, {"images": blob})
    assert ours[0].shape == theirs[0].shape == (1, 116, 8400)
    assert ours[1].shape == theirs[1].shape == (1, 32, 160, 160)
    # scores/coefficients/prototypes ~1e-5; boxes (pixels) at the float32 noise floor (see test_export_onnx)
    assert np.abs(ours[0][:, 4:] - theirs[0][:, 4:]).max() <= 1e-3
    assert np.abs(ours[1] - theirs[1]).max() <= 1e-3
    assert np.abs(ours[0][:, :4] - theirs[0][:, :4]).max() <= 5e-3
    with pytest.raises(ValueError, match="does not match the model input"):
        backend.infer(blob[:, :, :320])


@needs_torch
@needs_coco
def test_segmenter_on_pt_gives_the_onnx_detections():
    from edgeseg import Segmenter

    ours = Segmenter(COCO_PT)(str(BUS))
    theirs = Segmenter(COCO_ONNX)(str(BUS))
    assert ours.summary() == theirs.summary()
    assert len(ours) == len(theirs)
    np.testing.assert_array_equal(ours.class_id, theirs.class_id)
    np.testing.assert_allclose(ours.xyxy, theirs.xyxy, atol=1.0)


@needs_torch
@needs_coco
def test_cli_predict_on_pt_finds_four_persons_and_the_bus(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edgeseg", "predict", "--model", str(COCO_PT), "--source", str(BUS)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("bus.jpg:"))
    assert "4 person" in line and "1 bus" in line
    assert (tmp_path / "runs" / "predict" / "bus.jpg").is_file()


@needs_torch
@pytest.mark.skipif(not (V8_RAND.is_file() and V11_RAND.is_file()), reason="shared test models not available")
@pytest.mark.parametrize(("path", "arch"), [(V8_RAND, "yolov8n-seg"), (V11_RAND, "yolo11n-seg")])
def test_random_checkpoints_load_and_run_at_other_sizes(path, arch):
    from edgeseg.backends.torch_backend import TorchBackend

    backend = TorchBackend(path, imgsz=320, intra_op_threads=1)
    assert backend.metadata.extras["architecture"] == arch
    assert backend.metadata.names[0] == "0" and backend.input_spec.shape == (320, 320)
    blob = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)
    preds, protos = backend.infer(blob)
    assert preds.shape == (1, 116, 2100) and protos.shape == (1, 32, 80, 80)
    assert np.isfinite(preds).all() and np.isfinite(protos).all()


@needs_torch
@pytest.mark.skipif(not V8_RAND.is_file(), reason="shared test models not available")
def test_bad_options_are_clear(tmp_path):
    from edgeseg.backends.torch_backend import TorchBackend
    from edgeseg.errors import ModelLoadError

    with pytest.raises(ValueError, match="multiple of the model stride"):
        TorchBackend(V8_RAND, imgsz=300)
    with pytest.raises(ValueError, match="threads must be a positive int"):
        TorchBackend(V8_RAND, threads=0)
    with pytest.raises(ValueError, match="invalid device|unsupported device"):
        TorchBackend(V8_RAND, device="tpu:7")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            TorchBackend(V8_RAND, device="cuda:0")
    with pytest.raises(FileNotFoundError):
        TorchBackend(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ModelLoadError):
        TorchBackend(bad)
