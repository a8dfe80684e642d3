"""The stored-detail decision per ground-truth box, on synthetic textures whose answers are known by construction."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edge.bench.stored import (DETAIL_WINDOW, MAX_RETAINED, box_hidden, boxes_hidden, core_retained, detail_window,
                               lost_detail, lost_share, outside_detail_lost)
from edge.redact import strong_blur
from edge.types import Label

HEAD = np.array([60.0, 30.0, 180.0, 180.0])  # a whole-head box, 120 x 150
PLATE = np.array([100.0, 60.0, 220.0, 100.0])  # 120 x 40


def textured(height: int = 220, width: int = 300, seed: int = 0) -> np.ndarray:
    """Fine random texture everywhere: every pixel has detail to lose."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    grey = cv2.GaussianBlur(noise, (0, 0), 1.0)
    return cv2.merge([grey, grey, grey])


def blurred(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """A copy with one rectangle hidden as the redactor hides a box (sigma 0.15 of its longer side)."""
    out = image.copy()
    region = out[y1:y2, x1:x2]
    region[:] = strong_blur(region, max(4.0, 0.15 * max(region.shape[:2])))
    return out


def centred(box: np.ndarray, scale: float) -> tuple[int, int, int, int]:
    """The box scaled about its centre, rounded to whole pixels."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
    return round(cx - hw), round(cy - hh), round(cx + hw), round(cy + hh)


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


@pytest.mark.parametrize("box,label", [(HEAD, Label.FACE), (PLATE, Label.PLATE)])
def test_a_box_blurred_whole_is_hidden(box, label):
    source = textured()
    stored = blurred(source, *(int(v) for v in box))
    assert box_hidden(source, stored, box, label)
    assert box_hidden(source, jpeg(stored), box, label)  # and stays hidden once encoded


@pytest.mark.parametrize("box,label", [(HEAD, Label.FACE), (PLATE, Label.PLATE)])
def test_an_untouched_or_only_reencoded_box_is_not_hidden(box, label):
    source = textured()
    assert not box_hidden(source, source.copy(), box, label)
    assert not box_hidden(source, jpeg(source), box, label)


def test_a_plate_blurred_on_its_left_half_is_not_hidden():
    source = textured()
    x1, y1, x2, y2 = (int(v) for v in PLATE)
    stored = blurred(source, x1, y1, (x1 + x2) // 2, y2)
    lost, textured_pixels = lost_detail(source[y1:y2, x1:x2], stored[y1:y2, x1:x2], DETAIL_WINDOW)
    assert 0.4 < lost_share(lost, textured_pixels) < 0.6  # about half, far from the 85 % a plate needs
    assert not box_hidden(source, stored, PLATE, Label.PLATE)
    assert box_hidden(source, blurred(source, x1, y1, x2 - 6, y2), PLATE, Label.PLATE)  # 95 %: hidden


def test_a_face_with_its_centre_blurred_but_only_40_percent_of_its_ellipse_is_not_hidden():
    source = textured()
    # A centred rectangle of s x s of the box covers s^2 / (pi / 4) of the inscribed ellipse.
    stored = blurred(source, *centred(HEAD, math.sqrt(0.4 * math.pi / 4)))
    assert core_retained(source, stored, HEAD) < MAX_RETAINED  # the core did lose its detail
    assert not box_hidden(source, stored, HEAD, Label.FACE)
    wider = blurred(source, *centred(HEAD, 0.85))  # 92 % of the ellipse, core included
    assert box_hidden(source, wider, HEAD, Label.FACE)


def test_a_face_whose_ellipse_is_blurred_around_a_kept_core_is_not_hidden():
    source = textured()
    stored = blurred(source, *(int(v) for v in HEAD))
    x1, y1, x2, y2 = centred(HEAD, 0.5)
    stored[y1:y2, x1:x2] = source[y1:y2, x1:x2]  # eyes, nose and mouth as they were: 68 % of the ellipse lost
    assert core_retained(source, stored, HEAD) > MAX_RETAINED
    assert not box_hidden(source, stored, HEAD, Label.FACE)


def test_flat_pixels_are_left_out_of_the_share():
    source = np.full((220, 300, 3), 128, np.uint8)
    x1, y1, x2, y2 = (int(v) for v in PLATE)
    source[y1:y2, x2 - 12:x2] = textured(40, 12)  # the plate's characters: its right tenth
    stored = blurred(source, x1, y1, x2 - 12, y2)  # the plain part blurred, the characters kept
    assert not box_hidden(source, stored, PLATE, Label.PLATE)  # counted as lost, 90 % would pass
    assert box_hidden(source, blurred(source, x1, y1, x2, y2), PLATE, Label.PLATE)
    plain = np.full_like(source, 128)
    assert box_hidden(plain, plain.copy(), PLATE, Label.PLATE)  # no detail anywhere: nothing to leak


def test_boxes_reaching_outside_the_frame_and_many_boxes_at_once():
    source = textured()
    edge_box = np.array([250.0, -20.0, 330.0, 40.0])  # its top and right lie outside the 300 x 220 frame
    stored = blurred(source, 250, 0, 300, 40)
    boxes = np.array([edge_box, PLATE, [400.0, 300.0, 420.0, 310.0]])  # the last is wholly outside
    flags = boxes_hidden(source, stored, boxes, np.array([Label.PLATE, Label.PLATE, Label.FACE]))
    assert flags.tolist() == [True, False, True]
    assert boxes_hidden(source, stored, np.zeros((0, 4)), np.zeros(0, int)).shape == (0,)
    with pytest.raises(ValueError, match="differ in size"):
        boxes_hidden(source, stored[:100], boxes, np.zeros(3, int))


def test_the_window_shrinks_for_small_boxes():
    assert detail_window(150, 120) == DETAIL_WINDOW == 7
    assert detail_window(12, 40) == 5


def test_over_redaction_counts_the_textured_area_outside_the_boxes_that_lost_its_detail():
    source = np.full((220, 300, 3), 128, np.uint8)
    source[:, :150] = textured(220, 150)  # the left half has detail, the right half is a plain wall
    inside = np.zeros((220, 300), bool)
    inside[20:60, 20:60] = True  # a labelled box in the textured half: never counted
    stored = blurred(source, 0, 100, 300, 160)  # a false blur across both halves, 60 rows
    lost, counted = outside_detail_lost(source, stored, inside)
    # The plain half carries nothing to lose (but the few columns next to the texture, within the window).
    assert 150 * 220 - 40 * 40 <= counted <= 154 * 220 - 40 * 40
    assert lost / counted == pytest.approx(60 / (220 - 40 * 40 / 150), rel=0.1)  # the blurred rows of the left half
    assert outside_detail_lost(source, source.copy(), inside)[0] == 0
    everything = outside_detail_lost(source, None, inside)  # a dropped frame lost all of it
    assert everything == (counted, counted)
