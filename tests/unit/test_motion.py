"""Camera motion between keyframes: estimated from real frames, and used by the tracker only to add cover."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import read_all_frames
from edge.camera import SAMPLE_VIDEO
from edge.config import TrackConfig
from edge.detect.motion import MotionEstimator, compose, inverse, move_box, partial, small_grey
from edge.detect.tracking import BoxTracker
from edge.types import Detections, Label


@pytest.fixture(scope="module")
def sample() -> list[np.ndarray]:
    return read_all_frames(SAMPLE_VIDEO)


def _zoom(image: np.ndarray, scale: float, centre: tuple[float, float], shift: tuple[float, float]
          ) -> tuple[np.ndarray, np.ndarray]:
    matrix = cv2.getRotationMatrix2D(centre, 0.0, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE), matrix


@pytest.mark.parametrize("index, scale, shift", [(80, 1.15, (12.0, -5.0)), (20, 1.3, (0.0, 0.0)),
                                                 (200, 1.0, (-30.0, 8.0))])
def test_a_zoom_and_shift_of_a_real_frame_is_estimated(sample, index, scale, shift):
    image = sample[index]
    moved, truth = _zoom(image, scale, (700.0, 300.0), shift)
    matrix = MotionEstimator().between(small_grey(image), small_grey(moved), image.shape[1])
    assert matrix is not None
    probe = np.array([[300.0, 200.0, 1.0], [1000.0, 600.0, 1.0]])
    np.testing.assert_allclose(probe @ matrix.T, probe @ truth.T, atol=6.0)


def test_no_estimate_on_a_flat_frame():
    flat = np.full((360, 640, 3), 90, np.uint8)
    assert MotionEstimator().between(small_grey(flat), small_grey(flat), 640) is None


def test_partial_motion_keeps_the_zoom_centre_fixed_and_ends_at_the_whole_motion():
    matrix = cv2.getRotationMatrix2D((400.0, 200.0), 0.0, 2.0)
    np.testing.assert_allclose(partial(matrix, 1.0), matrix, atol=1e-9)
    np.testing.assert_allclose(partial(matrix, 0.0), [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    half = partial(matrix, 0.5)
    np.testing.assert_allclose(half @ [400.0, 200.0, 1.0], [400.0, 200.0], atol=1e-6)
    np.testing.assert_allclose(half[0, 0], np.sqrt(2.0), atol=1e-9)
    np.testing.assert_allclose(compose(matrix, inverse(matrix)), [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_an_object_seen_only_at_the_later_keyframe_follows_the_camera_back():
    """Driving towards a roadside sign: it grows 2x about the image centre over 20 frames and
    slides outwards faster than a carried box grows; only keyframe 20 finds it."""
    zoom = cv2.getRotationMatrix2D((640.0, 360.0), 0.0, 2.0)  # keyframe 0 -> keyframe 20
    seen_at_20 = np.array([1000.0, 500.0, 1040.0, 520.0])
    config = TrackConfig(growth_per_frame=0.03)
    with_motion, without = BoxTracker(config), BoxTracker(config)
    for tracker, motion in ((with_motion, zoom), (without, None)):
        tracker.update(0, Detections.empty())
        tracker.update(20, Detections(seen_at_20[None], [0.5], [int(Label.PLATE)]), motion=motion)
    back = inverse(zoom)
    for frame in range(1, 20):
        truth = move_box(seen_at_20, compose(back, partial(zoom, frame / 20)))
        plans = [tracker.plan(frame) for tracker in (with_motion, without)]
        contained = [bool(((p.xyxy[:, :2] <= truth[:2] + 1e-3) & (p.xyxy[:, 2:] >= truth[2:] - 1e-3)).all(axis=1).any())
                     for p in plans]
        assert contained[0], frame
        if frame < 10:
            assert not contained[1], frame  # guards the test: without the motion, these frames leaked
