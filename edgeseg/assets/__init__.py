"""Files shipped inside the package: the built-in demo model (see :mod:`edgeseg.train.demo_model`)."""
from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
DEMO_MODEL = "demo-seg.onnx"


def demo_model_path() -> Path:
    """Path of the built-in demo model; a clear error if this installation lacks it."""
    path = ASSETS_DIR / DEMO_MODEL
    if not path.is_file():
        raise FileNotFoundError(
            f"the built-in demo model {path} is missing from this installation; regenerate it with "
            "`python -m edgeseg.train.demo_model` (needs edgeseg[train,export]) or pass --model")
    return path
