"""Drawing: paints masks only where the masks are, boxes and labels; never touches the input."""

import numpy as np
import pytest

from edgeseg.annotate import PALETTE, class_color, draw, draw_zones, track_color, zone_color
from edgeseg.detections import Detections
from edgeseg.ops.masks import MaskSet
from edgeseg.zones import LineZone, PolygonZone, ZoneSet


def _detections(shape=(60, 80), tracker_id=None):
    bitmap = np.zeros((20, 30), np.uint8)
    bitmap[5:15, 10:20] = 1  # mask = 10x10 square at x 30..40, y 25..35
    masks = MaskSet(np.array([[20, 20, 50, 40]], np.int32), bitmap.ravel(), np.array([0, 600]), shape)
    return Detections(
        xyxy=[[20, 20, 50, 40]], confidence=[0.87], class_id=[3], names={3: "cat"}, masks=masks, tracker_id=tracker_id
    )


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


def _label_columns(out, color):
    """Columns of the label strip above the box (y < 20) painted in ``color``."""
    strip = (out[:20] == np.array(color, np.uint8)).all(axis=2)
    return np.flatnonzero(strip.any(axis=0))


def test_tracked_detections_are_coloured_by_track_and_labelled_with_the_id():
    image = np.full((60, 80, 3), 100, np.uint8)
    tracked = _detections(tracker_id=[7])
    assert track_color(7) != class_color(3)
    out = draw(image, tracked, alpha=0.5, boxes=False, labels=False)
    expected = (np.array([100.0] * 3) * 0.5 + np.array(track_color(7)) * 0.5).round()
    np.testing.assert_allclose(out[30, 35], expected, atol=1)  # the mask follows the track's colour
    plain = draw(image, _detections(), alpha=0.0)
    labelled = draw(image, tracked, alpha=0.0)
    # the label's box is filled with the track's colour, and "#7 cat 0.87" is wider than "cat 0.87"
    assert len(_label_columns(labelled, class_color(3))) == 0
    assert len(_label_columns(labelled, track_color(7))) > len(_label_columns(plain, class_color(3))) + 5 > 5
    # another id, another colour: an id switch shows
    assert len(_label_columns(draw(image, _detections(tracker_id=[8]), alpha=0.0), track_color(8))) > 5


def test_draw_zones_fills_outlines_and_labels():
    pytest.importorskip("cv2")
    image = np.full((120, 160, 3), 50, np.uint8)
    zone = PolygonZone([[20, 40], [100, 40], [100, 110], [20, 110]], name="door", trigger="center")
    line = LineZone([0, 20], [160, 20], name="gate")
    out = draw_zones(image, ZoneSet([zone], [line]), alpha=0.5)
    assert (image == 50).all()  # input untouched
    fill = (np.array([50.0] * 3) * 0.5 + np.array(zone_color(0)) * 0.5 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[80, 60], fill)  # inside, away from outline and label
    np.testing.assert_array_equal(out[80, 130], [50, 50, 50])  # outside
    assert (out[75, 19:22] != fill).any(axis=1).any() and (out[75, 19:22] != 50).any()  # the outline
    assert (out[20, 5:150] != 50).any(axis=1).mean() > 0.9  # the line
    assert (out[22:34, 80] != 50).any()  # the "in" arrow points down from the middle
    assert (out[:20, 60:100] != 50).any()  # a label near the middle of the line
    # the counts are the last update's: the label grows when the text does
    zone.update(
        Detections(xyxy=[[50, 50, 60, 60]] * 12, confidence=[0.5] * 12, class_id=[0] * 12, image_shape=(120, 160))
    )
    assert zone.current_count == 12
    assert (
        draw_zones(image, [zone], alpha=0.0) != draw_zones(image, [PolygonZone(zone.polygon, name="door")], alpha=0.0)
    ).any()
    # fill only inside the image for a zone partly outside; normalized zones follow the image size
    half = PolygonZone([[0.5, 0], [1, 0], [1, 1], [0.5, 1]], normalized=True, name="right")
    out = draw_zones(image, [half], alpha=1.0, labels=False)
    assert (out[60, 90:155] == zone_color(0)).all() and (out[60, 5:75] == 50).all()
    out = draw_zones(image, [PolygonZone([[-50, -50], [40, -50], [40, 30], [-50, 30]])], alpha=1.0, labels=False)
    assert (out[5:25, 0:35] == zone_color(0)).all()


def test_draw_zones_rejects_bad_input():
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(TypeError, match="PolygonZone and LineZone"):
        draw_zones(image, ["door:0,0 1,1 0,1"])
    with pytest.raises(ValueError, match="uint8 BGR"):
        draw_zones(np.zeros((20, 20), np.uint8), [])
    with pytest.raises(ValueError, match="alpha"):
        draw_zones(image, [], alpha=-1)
    assert (draw_zones(image, []) == 0).all()
