"""Regenerate the built-in demo model: procedural data -> training -> validation -> ONNX.

    python -m edgeseg.train.demo_model                # writes edgeseg/assets/demo-seg.onnx (+ .json)

The demo model is a ``yolov8t-seg`` (edgeseg's own tiny scale, ~1M parameters) trained from scratch by
this project's trainer on scenes from :mod:`edgeseg.synthetic` (classes circle, square, triangle, star).
The ONNX file ships inside the package so that ``edgeseg run --source demo`` works offline with only the
runtime installed; ``demo-seg.json`` beside it records how it was made and what it measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

from ..assets import ASSETS_DIR as ASSETS
from ..assets import DEMO_MODEL as MODEL_NAME
from ..fileio import atomic_write_text
from ..synthetic import CLASS_NAMES
from ..synthetic.dataset import write_dataset


def build(
    out_dir: Path = ASSETS,
    work: Path = Path("runs/demo-model"),
    *,
    n_train: int = 1000,
    n_val: int = 200,
    imgsz: int = 320,
    epochs: int = 30,
    batch: int = 16,
    seed: int = 0,
    model: str = "yolov8t-seg",
    lr0: float = 0.002,
) -> dict:
    """Generate data, train, validate and export; returns the record written to ``demo-seg.json``."""
    from importlib import import_module

    from ..formats import FORMATS

    export = import_module(FORMATS["onnx"].exporter_module).export  # exporters are reached through the table
    from ..val.validator import validate
    from .trainer import train

    t0 = time.time()
    work = Path(work)
    data = write_dataset(work / "data", n_train=n_train, n_val=n_val, imgsz=imgsz, seed=seed)
    # A short run from scratch: AdamW, and an optimizer step every batch (nbs = batch) instead of
    # accumulating to 64 images, which gives 4x more steps in the same time (20 epochs with nbs 64 and
    # Ultralytics' auto lr reached only mask mAP50 0.39 on the val split).
    result = train(
        model=model,
        data=str(data),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        seed=seed,
        optimizer="AdamW",
        lr0=lr0,
        nbs=batch,
        cos_lr=True,
        workers=0,
        project=str(work),
        name="train",
        exist_ok=True,
        val=False,
        plots=True,
        close_mosaic=max(1, epochs // 4),
    )
    export(str(result.best), imgsz=imgsz, opset=17, simplify=True, output=str(work / MODEL_NAME))
    val = validate(str(work / MODEL_NAME), str(data), imgsz=imgsz, progress=False)  # what ships
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / MODEL_NAME
    shutil.copyfile(work / MODEL_NAME, onnx_path)
    record = {
        "model": model,
        "classes": list(CLASS_NAMES),
        "imgsz": imgsz,
        "dataset": {
            "generator": "edgeseg.synthetic.dataset.write_dataset",
            "n_train": n_train,
            "n_val": n_val,
            "seed": seed,
        },
        "training": {
            "epochs": epochs,
            "batch": batch,
            "nbs": batch,
            "optimizer": "AdamW",
            "lr0": lr0,
            "cos_lr": True,
            "seed": seed,
        },
        "val": {
            "box_map50": round(val.box.map50, 4),
            "box_map50_95": round(val.box.map50_95, 4),
            "mask_map50": round(val.mask.map50, 4),
            "mask_map50_95": round(val.mask.map50_95, 4),
            "images": val.n_images,
            "instances": val.n_instances,
        },
        "onnx_bytes": onnx_path.stat().st_size,
        "built_with": {"python": platform.python_version(), "minutes": round((time.time() - t0) / 60, 1)},
        "regenerate": "python -m edgeseg.train.demo_model",
    }
    atomic_write_text(out_dir / "demo-seg.json", json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgeseg.train.demo_model", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ASSETS, help="where demo-seg.onnx goes (default: the package)")
    p.add_argument("--work", type=Path, default=Path("runs/demo-model"), help="data and training runs")
    p.add_argument("--train", type=int, default=1000, help="generated training images")
    p.add_argument("--val", type=int, default=200, help="generated validation images")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    record = build(
        a.out, a.work, n_train=a.train, n_val=a.val, imgsz=a.imgsz, epochs=a.epochs, batch=a.batch, seed=a.seed
    )
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
