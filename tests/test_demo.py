"""The built-in demo model and the README's main command (`edgeseg run --source demo`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from edgeseg import Segmenter
from edgeseg.assets import ASSETS_DIR, demo_model_path
from edgeseg.sources import open_source
from edgeseg.synthetic import CLASS_NAMES
from edgeseg.synthetic.dataset import write_dataset

REPO = Path(__file__).resolve().parents[1]


def test_demo_model_ships_with_its_record():
    path = demo_model_path()
    size_mb = path.stat().st_size / 1e6
    assert 0.5 < size_mb < 8, f"the demo model should be a few MB, is {size_mb:.1f} MB"
    record = json.loads((ASSETS_DIR / "demo-seg.json").read_text())
    assert record["classes"] == list(CLASS_NAMES)
    assert record["regenerate"] == "python -m edgeseg.train.demo_model"
    assert record["val"]["mask_map50"] >= 0.8


def test_demo_model_names_and_input():
    seg = Segmenter(demo_model_path())
    assert [seg.names[i] for i in sorted(seg.names)] == list(CLASS_NAMES)


def test_demo_model_reaches_mask_map50_on_its_generated_val_split(tmp_path):
    """Regenerates the validation split exactly (each image depends only on seed, split and index)."""
    from edgeseg.val.validator import validate

    record = json.loads((ASSETS_DIR / "demo-seg.json").read_text())
    n_val = min(100, record["dataset"]["n_val"])
    data = write_dataset(
        tmp_path / "data", n_train=0, n_val=n_val, imgsz=record["imgsz"], seed=record["dataset"]["seed"]
    )
    result = validate(str(demo_model_path()), str(data), imgsz=record["imgsz"], progress=False)
    assert result.n_images == n_val
    assert result.mask.map50 >= 0.8, result.summary()
    assert result.box.map50 >= 0.8, result.summary()


def test_demo_source_and_model_find_the_moving_shapes():
    seg = Segmenter(demo_model_path())
    found = []
    with open_source("demo") as source:
        for frame in source:
            if frame.index >= 30:
                break
            det = seg(frame.image)
            found.append(len(det))
            assert set(det.class_names) <= set(CLASS_NAMES)
            if len(det):
                assert det.masks is not None and (det.masks.areas() > 0).all()
    assert np.mean([n > 0 for n in found]) > 0.9, found


def test_main_command_runs_offline_and_writes_a_video(tmp_path):
    out = tmp_path / "demo.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "edgeseg", "run", "--source", "demo", "--save", str(out), "--max-frames", "20"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "built-in demo model" in proc.stdout
    assert "FPS" in proc.stdout or "fps" in proc.stdout.lower()
    cap = cv2.VideoCapture(str(out))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames == 20
