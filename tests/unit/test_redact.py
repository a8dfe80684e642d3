import datetime as dt

import cv2
import numpy as np
import pytest

from conftest import checkerboard
from edge.bench.coverage import box_coverage
from edge.bench.stored import retained_detail
from edge.config import RedactConfig
from edge.redact import Redactor, grow_boxes, redaction_mask
from edge.types import DetectionFailure, Detections, Frame, Label


def _frame(image: np.ndarray) -> Frame:
    return Frame(image_bgr=image, index=0, t_mono_ns=0, t_utc=dt.datetime.now(dt.timezone.utc))


def _one(label: Label, xyxy) -> Detections:
    return Detections(np.array([xyxy], np.float32), np.array([0.9]), np.array([label]))


def test_grow_boxes_about_centre_and_clip():
    grown = grow_boxes(np.array([[10, 10, 20, 30]], np.float32), 2.0, 100, 100)
    assert grown.tolist() == [[5, 0, 25, 40]]
    clipped = grow_boxes(np.array([[0, 0, 10, 10], [95, 95, 100, 100]], np.float32), 1.5, 100, 100)
    assert clipped.tolist() == [[0, 0, 13, 13], [93, 93, 100, 100]]


def test_per_box_scales():
    grown = grow_boxes(np.array([[10, 10, 20, 20], [10, 10, 20, 20]], np.float32), np.array([1.0, 3.0]), 100, 100)
    assert grown.tolist() == [[10, 10, 20, 20], [0, 0, 30, 30]]


def test_face_mask_is_an_ellipse_and_plate_mask_a_rectangle():
    config = RedactConfig(face_mask_scale=1.0, plate_mask_scale=1.0)
    face = redaction_mask(_one(Label.FACE, [0, 0, 40, 40]), (50, 50), config)
    plate = redaction_mask(_one(Label.PLATE, [0, 0, 40, 40]), (50, 50), config)
    assert plate.sum() == 1600 and plate[0, 0] and plate[39, 39]
    assert not face[0, 0] and face[20, 20] and face[20, 1] and face[1, 20]
    assert face.sum() == pytest.approx(np.pi * 20 * 20, rel=0.06)  # rasterized border pixels count too


def test_mask_scale_grows_the_hidden_area():
    small = redaction_mask(_one(Label.PLATE, [40, 40, 60, 50]), (100, 100), RedactConfig(plate_mask_scale=1.0))
    large = redaction_mask(_one(Label.PLATE, [40, 40, 60, 50]), (100, 100), RedactConfig(plate_mask_scale=2.0))
    assert small.sum() == 200 and large.sum() == 800 and (large >= small).all()


@pytest.mark.parametrize("mode", ["gaussian", "pixelate", "fill"])
def test_each_mode_destroys_detail_inside_and_keeps_it_outside(mode):
    image = checkerboard(200, 300, cell=3)
    original = image.copy()
    result = Redactor(RedactConfig(mode=mode)).redact(_frame(image), _one(Label.PLATE, [50, 50, 150, 90]))
    assert result.counts.plates == 1 and not result.counts.whole_frame
    assert retained_detail(original[55:85, 60:140], result.image_bgr[55:85, 60:140]) < 0.05
    assert np.array_equal(result.image_bgr[150:, 200:], original[150:, 200:])


def test_blurred_plate_text_is_unreadable():
    """Rendered plate characters: after redaction they no longer match the original glyph edges."""
    image = np.full((120, 400, 3), 255, np.uint8)
    cv2.putText(image, "AB 123 CD", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 5)
    original = image.copy()
    redacted = Redactor(RedactConfig()).redact(_frame(image), _one(Label.PLATE, [10, 20, 390, 100]))
    assert retained_detail(original[20:100, 10:390], redacted.image_bgr[20:100, 10:390]) < 0.05
    # No column of the text band keeps a dark stroke: the glyphs have merged into a smear.
    assert redacted.image_bgr[30:90, 20:380].min() > 60


def test_detector_failure_blurs_the_whole_frame():
    image = checkerboard(120, 160, cell=2)
    original = image.copy()
    result = Redactor(RedactConfig()).redact(_frame(image), DetectionFailure("boom"))
    assert result.counts.whole_frame
    assert retained_detail(original, result.image_bgr) < 0.02


def test_detector_failure_can_drop_the_frame_and_wipes_it():
    image = checkerboard(120, 160)
    assert Redactor(RedactConfig(on_failure="drop_frame")).redact(_frame(image), DetectionFailure("x")) is None
    assert not image.any()


def test_redaction_error_falls_back_to_whole_frame():
    redactor = Redactor(RedactConfig())

    def broken(_region):
        raise cv2.error("simulated failure while hiding a region")

    redactor._hide = broken  # the region path fails; the whole-frame path must take over
    image = checkerboard(60, 80)
    original = image.copy()
    result = redactor.redact(_frame(image), _one(Label.FACE, [0, 0, 10, 10]))
    assert result.counts.whole_frame
    assert retained_detail(original, result.image_bgr) < 0.05


def test_face_ellipse_at_the_frame_edge_is_cut_not_shrunk():
    """The ellipse is drawn on the whole grown box and then clipped, so an edge face stays covered."""
    face = Detections(np.array([[0, 40, 40, 100]], np.float32), np.ones(1), np.array([Label.FACE]))
    mask = redaction_mask(face, (200, 200), RedactConfig())
    assert box_coverage(mask, face.xyxy)[0] > 0.97
    assert mask[70, 0] and not mask[40, 50]  # the edge column is hidden; the ellipse keeps its shape


def test_the_boxes_of_one_tracked_object_are_hidden_as_one_region_with_the_same_pixels():
    """The cover gives an object several boxes; they become one region whose mask is exactly their union."""
    from edge.config import RedactConfig
    from edge.redact import redaction_mask, region_masks

    xyxy = [[100, 100, 140, 150], [104, 98, 146, 151], [300, 200, 360, 230], [308, 204, 366, 232], [10, 10, 30, 40]]
    labels = [Label.FACE, Label.FACE, Label.PLATE, Label.PLATE, Label.FACE]
    tracked = Detections(xyxy, [0.9] * 5, labels, track_id=[3, 3, 4, 4, -1])
    untracked = Detections(xyxy, [0.9] * 5, labels)
    config = RedactConfig()
    assert len(region_masks(tracked, (480, 640), config)) == 3
    assert len(region_masks(untracked, (480, 640), config)) == 5
    assert np.array_equal(redaction_mask(tracked, (480, 640), config), redaction_mask(untracked, (480, 640), config))
