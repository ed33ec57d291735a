"""Procedural shapes data for the built-in default model: labelled scenes, a YOLO dataset writer and a demo clip.

    from edgeseg.synthetic import write_dataset, iter_clip_frames
    yaml_path = write_dataset("runs/shapes", n_train=1000, n_val=200)
    for frame in iter_clip_frames(90): ...

numpy + OpenCV (cv2, imported by the functions that draw: `edgeseg[opencv]` or a system build). Submodules load
on first use.
"""

from __future__ import annotations

from importlib import import_module

CLASS_NAMES = ("circle", "square", "triangle", "star")  # same tuple as shapes.CLASS_NAMES (checked in tests)

_LAZY = {
    "Scene": "scenes",
    "render_scene": "scenes",
    "write_dataset": "dataset",
    "iter_scenes": "dataset",
    "make_clip": "clip",
    "iter_clip_frames": "clip",
    "tracking_clip": "tracks",
}
__all__ = ["CLASS_NAMES", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
