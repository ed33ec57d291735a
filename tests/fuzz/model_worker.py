"""Worker process of the model-file fuzzer (tests/fuzz/model_files.py): opens one mutated file per request
through edgeseg's public API and reports what happened.

Protocol: one JSON request per line on stdin, ``{"kind": ..., "path": ..., "options": {...}}``; one JSON answer
per line on the file descriptor given as argv[1] (stdout and stderr stay free for the libraries' own chatter):
``{"outcome": "result" | "error" | "uncaught", "type": ..., "message": ...}``. ``error`` is an
:class:`edgeseg.errors.EdgesegError` (the clear errors edgeseg promises); ``uncaught`` is any other exception
(a traceback a user would see). A crash or a hang is seen by the driver: the process dies, or does not answer.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((240, 320, 3), 114, np.uint8)
    img[40:200, 60:260] = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
    return img


def _open_model(path: str, options: dict) -> str:
    from edgeseg import Segmenter

    seg = Segmenter(path, conf=0.01, **options)
    dets = seg(_image())
    return f"{len(dets)} detections"


def _open_metadata(path: str, options: dict) -> str:
    from edgeseg.metadata import from_yaml

    meta = from_yaml(path)
    return f"metadata with {len(meta.names or {})} names"


def _open_dataset(path: str, options: dict) -> str:
    from edgeseg.data.dataset_yaml import list_image_files, load_dataset_yaml

    cfg = load_dataset_yaml(path)
    files = list_image_files(cfg.train) if cfg.train else []
    return f"dataset with {len(cfg.names)} names, {len(files)} train images"


def _open_labels(path: str, options: dict) -> str:
    from edgeseg.data.labels import scan_labels

    labels, _summary = scan_labels([options["image"]], nc=int(options["nc"]), workers=0)
    return f"{len(labels)} label records"


KINDS = {"model": _open_model, "metadata": _open_metadata, "dataset": _open_dataset, "labels": _open_labels}


def main() -> None:
    answers = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    from edgeseg.errors import EdgesegError

    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        try:
            detail = KINDS[req["kind"]](req["path"], req.get("options") or {})
            answer = {"outcome": "result", "message": detail}
        except EdgesegError as e:
            answer = {"outcome": "error", "type": type(e).__name__, "message": str(e)[:300]}
        except BaseException as e:
            answer = {
                "outcome": "uncaught",
                "type": type(e).__name__,
                "message": str(e)[:300],
                "traceback": traceback.format_exc()[-3000:],
            }
        answers.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
