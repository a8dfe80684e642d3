"""Fixed privacy masks (`redact.masks`): polygons hidden in every frame, whatever the detectors say."""
from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import checkerboard, detail
from edge.config import PrivacyMask, RedactConfig, config_from_dict
from edge.errors import ConfigError
from edge.redact import FixedMasks, Redactor
from edge.types import DetectionFailure, Detections, Frame, Label

BOTTOM_BAND = PrivacyMask("dashboard screen", [(0.0, 0.75), (1.0, 0.75), (1.0, 1.0), (0.0, 1.0)])


def _frame(image: np.ndarray) -> Frame:
    return Frame(image_bgr=image, index=0, t_mono_ns=0, t_utc=dt.datetime.now(dt.timezone.utc))


def _textured(height: int = 120, width: int = 160) -> np.ndarray:
    return checkerboard(height, width, 3) // 2 + 60  # no black pixel: a filled mask is told from the scene


def test_a_filled_mask_is_black_and_the_rest_untouched():
    image = _textured()
    original = image.copy()
    sealed = Redactor(RedactConfig(masks=[BOTTOM_BAND])).redact(_frame(image), Detections.empty())
    assert (sealed.image_bgr[90:] == 0).all()
    assert (sealed.image_bgr[:89] == original[:89]).all()


def test_a_blurred_mask_loses_its_detail_and_keeps_its_colour():
    image = _textured()
    window = PrivacyMask("neighbour's window", [(0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (0.5, 0.5)], hide="blur")
    sealed = Redactor(RedactConfig(masks=[window])).redact(_frame(image.copy()), Detections.empty())
    inside, before = sealed.image_bgr[:60, 80:], image[:60, 80:]
    assert detail(inside) < 0.1 * detail(before)
    assert abs(float(inside.mean()) - float(before.mean())) < 10  # blurred, not blacked out
    assert (sealed.image_bgr[62:, :78] == image[62:, :78]).all()


def test_masks_hold_when_detection_failed():
    sealed = Redactor(RedactConfig(masks=[BOTTOM_BAND])).redact(
        _frame(_textured()), DetectionFailure("scripted"))
    assert sealed.counts.whole_frame and (sealed.image_bgr[90:] == 0).all()


def test_masks_and_detections_are_both_hidden():
    image = _textured()
    plate = Detections(np.array([[10, 10, 50, 30]], np.float32), np.array([0.9]), np.array([Label.PLATE]))
    sealed = Redactor(RedactConfig(masks=[BOTTOM_BAND])).redact(_frame(image.copy()), plate)
    assert detail(sealed.image_bgr[12:28, 12:48]) < 0.2 * detail(image[12:28, 12:48])
    assert (sealed.image_bgr[90:] == 0).all() and sealed.counts.plates == 1


def test_one_config_fits_every_resolution():
    triangle = FixedMasks([PrivacyMask("rear seats", [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)])])
    for height, width in ((72, 128), (720, 1280), (1080, 1920)):
        share = triangle.pixels((height, width), "fill").mean()
        assert share == pytest.approx(0.5, abs=2.0 / min(height, width))


_corner = st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0))


@settings(max_examples=150, deadline=None)
@given(points=st.lists(_corner, min_size=3, max_size=7), height=st.integers(8, 200), width=st.integers(8, 300),
       hide=st.sampled_from(["fill", "blur"]))
def test_no_pixel_inside_a_polygon_survives(points, height, width, hide):
    """Every pixel whose square lies wholly inside the polygon is in the mask (its edge pixels count too)."""
    mask = FixedMasks([PrivacyMask("p", points, hide=hide)]).pixels((height, width), hide)
    corners = (np.array(points) * (width, height)).astype(np.float32).reshape(-1, 1, 2)
    ys, xs = np.mgrid[0:height, 0:width]
    for y, x in zip(ys.ravel()[::7], xs.ravel()[::7]):
        # The pixel's centre at (x + 0.5, y + 0.5) and over a pixel's diagonal from every edge.
        if cv2.pointPolygonTest(corners, (float(x) + 0.5, float(y) + 0.5), measureDist=True) > 1.5:
            assert mask[y, x], (x, y)


def test_config_checks_masks():
    good = config_from_dict({"redact": {"masks": [{"name": "dash", "points": [[0, 0.8], [1, 0.8], [1, 1]]}]}})
    assert good.redact.masks[0].points == [(0.0, 0.8), (1.0, 0.8), (1.0, 1.0)]
    for masks, needle in (([{"points": [[0, 0], [1, 1]]}], "at least 3 [x, y] points"),
                          ([{"points": [[0, 0], [1.5, 0], [1, 1]]}], "each from 0.0 to 1.0"),
                          ([{"points": [[0, 0], [0.5, 0.5], [1, 1]]}], "enclose no area"),
                          ([{"points": [[0, 0], [1, "a"], [1, 1]]}], "redact.masks[0].points"),
                          ([{"name": "no points"}], "needs its polygon's corners"),
                          ([{"points": [[0, 0], [1, 0], [1, 1]], "hide": "smudge"}], "fill, blur")):
        with pytest.raises(ConfigError) as raised:
            config_from_dict({"redact": {"masks": masks}})
        assert needle in str(raised.value), raised.value
