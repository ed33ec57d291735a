"""Validation of a YOLO26-seg checkpoint with both heads, against Ultralytics' own figures.

../shared/models/SOURCES.md gives Ultralytics 8.4.190's ``model.val(data='shapes-seg.yaml', imgsz=320, batch=16)``
of yolo26n-seg-shapes.pt with its default one-to-many head (``nms=None``) and with the one-to-one head
(``nms=False``); edgeseg's figures must lie within 0.5 points of them.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from edgeseg.cli import main
from edgeseg.val import validate
from shared_paths import SHARED

CKPT = SHARED / "models" / "yolo26n-seg-shapes.pt"
DATA = SHARED / "data" / "shapes-seg" / "shapes-seg.yaml"
pytestmark = pytest.mark.skipif(not (CKPT.exists() and DATA.exists()), reason="../shared is not available")

# box mAP50, box mAP50-95, mask mAP50, mask mAP50-95 (SOURCES.md)
ULTRALYTICS = {
    "one2many": (0.0633, 0.0247, 0.0683, 0.0354),
    "end2end": (0.0499, 0.0166, 0.0579, 0.0284),
}
KEYS = ("metrics/mAP50(B)", "metrics/mAP50-95(B)", "metrics/mAP50(M)", "metrics/mAP50-95(M)")


@pytest.mark.parametrize("head", ["one2many", "end2end"])
def test_both_heads_match_ultralytics_val_within_half_a_point(head):
    result = validate(CKPT, DATA, imgsz=320, batch=16, progress=False, end2end=head == "end2end").as_dict()
    for key, ref in zip(KEYS, ULTRALYTICS[head]):
        assert abs(result[key] - ref) <= 0.005, (head, key, result[key], ref)


def test_cli_head_option_and_default(capsys):
    assert (
        main(["val", "--model", str(CKPT), "--data", str(DATA), "--imgsz", "320", "-q", "--json", "--head", "one2many"])
        == 0
    )
    one2many = json.loads(capsys.readouterr().out)
    assert main(["val", "--model", str(CKPT), "--data", str(DATA), "--imgsz", "320", "-q", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert abs(one2many["mask"]["map50_95"] - ULTRALYTICS["one2many"][3]) <= 0.005
    assert abs(default["mask"]["map50_95"] - ULTRALYTICS["end2end"][3]) <= 0.005  # edgeseg's default: end-to-end


def test_head_choice_needs_a_yolo26_model():
    v8 = SHARED / "models" / "yolov8n-seg-rand.pt"
    with pytest.raises(ValueError, match="two heads of a YOLO26"):
        validate(v8, DATA, imgsz=320, progress=False, end2end=True)
