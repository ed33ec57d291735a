"""Drawing: paints masks only where the masks are, boxes and labels; never touches the input."""

import numpy as np
import pytest

from edgeseg.annotate import PALETTE, class_color, draw
from edgeseg.detections import Detections
from edgeseg.ops.masks import MaskSet


def _detections(shape=(60, 80)):
    bitmap = np.zeros((20, 30), np.uint8)
    bitmap[5:15, 10:20] = 1  # mask = 10x10 square at x 30..40, y 25..35
    masks = MaskSet(np.array([[20, 20, 50, 40]], np.int32), bitmap.ravel(), np.array([0, 600]), shape)
    return Detections(xyxy=[[20, 20, 50, 40]], confidence=[0.87], class_id=[3], names={3: "cat"}, masks=masks)


def test_mask_painted_only_inside_the_mask():
    image = np.full((60, 80, 3), 100, np.uint8)
    out = draw(image, _detections(), alpha=0.5, boxes=False, labels=False)
    assert (image == 100).all()  # input untouched
    changed = (out != image).any(axis=2)
    assert changed[25:35, 30:40].all() and changed.sum() == 100
    expected = (np.array([100.0] * 3) * 0.5 + np.array(class_color(3)) * 0.5).round()
    np.testing.assert_allclose(out[30, 35], expected, atol=1)


def test_boxes_and_labels_are_drawn():
    image = np.zeros((60, 80, 3), np.uint8)
    out = draw(image, _detections(), alpha=0.0)
    assert (out[40, 20:50] != 0).any() and (out[20:40, 50] != 0).any()  # box edges
    assert (out[:20] != 0).any()  # label above the box
    assert (draw(image, _detections(), alpha=0.0, boxes=False, labels=False) == 0).all()


def test_empty_and_mismatched():
    image = np.zeros((60, 80, 3), np.uint8)
    assert (draw(image, Detections.empty({}, (60, 80))) == 0).all()
    with pytest.raises(ValueError, match="shape"):
        draw(np.zeros((61, 80, 3), np.uint8), _detections())
    with pytest.raises(ValueError, match="uint8 BGR"):
        draw(np.zeros((60, 80), np.uint8), _detections())
    with pytest.raises(ValueError, match="alpha"):
        draw(image, _detections(), alpha=2)


def test_palette_is_fixed_and_distinct():
    assert len(set(PALETTE)) == len(PALETTE) == 20
    assert class_color(0) == class_color(20) != class_color(1)
