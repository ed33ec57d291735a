"""Files shipped inside the package (the built-in demo model, see :mod:`edgeseg.train.demo_model`) and the
one place that knows where sample photos are found."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
DEMO_MODEL = "demo-seg.onnx"


def demo_model_path() -> Path:
    """Path of the built-in demo model; a clear error if this installation lacks it."""
    path = ASSETS_DIR / DEMO_MODEL
    if not path.is_file():
        raise FileNotFoundError(
            f"the built-in demo model {path} is missing from this installation; regenerate it with "
            "`python -m edgeseg.train.demo_model` (needs edgeseg[train,export]) or pass --model"
        )
    return path


SAMPLES_ENV = "EDGESEG_SAMPLES"
_SAMPLE_NAMES = ("bus.jpg", "zidane.jpg")


def sample_images() -> list[Path]:
    """Real photos to check and time a model on when the caller names none (export checks, the export
    report, ``edgeseg benchmark``): bus.jpg and zidane.jpg in the folder named by ``EDGESEG_SAMPLES``, else
    in the project's test data beside a source checkout (``../shared/data/images``); [] when neither has
    them (callers then fall back to a synthetic image or ask for one)."""
    env = os.environ.get(SAMPLES_ENV)
    folder = Path(env) if env else ASSETS_DIR.parents[1].parent / "shared" / "data" / "images"
    return [folder / name for name in _SAMPLE_NAMES if (folder / name).is_file()]
