"""Scene cuts on grey thumbnails: a cut between two views is found, camera motion and
exposure changes are not, and a cut on a dropped frame still shows."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import read_all_frames
from edge.camera import SAMPLE_VIDEO
from edge.detect.scenecut import SceneCutDetector, cut_score, thumbnail

THRESHOLD = 0.5


@pytest.fixture(scope="module")
def sample() -> list[np.ndarray]:
    return read_all_frames(SAMPLE_VIDEO)


def _view(image: np.ndarray, dx: float = 0.0, zoom: float = 1.0) -> np.ndarray:
    """A crop of the image shifted by `dx` of its width and zoomed, resized back: camera motion."""
    height, width = image.shape[:2]
    crop_w, crop_h = int(width * 0.7 / zoom), int(height * 0.7 / zoom)
    x0 = int(width * (0.15 + dx) + (width * 0.7 - crop_w) / 2)
    y0 = int(height * 0.15 + (height * 0.7 - crop_h) / 2)
    return cv2.resize(image[y0:y0 + crop_h, x0:x0 + crop_w], (width, height))


@pytest.mark.parametrize("a, b", [(70, 200), (10, 130), (90, 320), (20, 250)])
def test_a_cut_between_two_scenes_of_the_sample_is_found(sample, a, b):
    assert cut_score(thumbnail(sample[a]), thumbnail(sample[b])) > THRESHOLD


@pytest.mark.parametrize("dx, zoom", [(0.01, 1.0), (0.02, 1.0), (0.0, 1.03), (0.01, 1.02)])
def test_camera_motion_is_not_a_cut(sample, dx, zoom):
    for index in (20, 80, 200, 320):
        assert cut_score(thumbnail(_view(sample[index])), thumbnail(_view(sample[index], dx, zoom))) < THRESHOLD


def test_an_exposure_change_is_not_a_cut(sample):
    darker = cv2.convertScaleAbs(sample[80], alpha=0.6, beta=10)
    assert cut_score(thumbnail(sample[80]), thumbnail(darker)) < 0.1


def test_black_frames_and_the_step_to_a_scene_are_cuts_but_black_to_black_is_not():
    black = np.zeros((72, 128, 3), np.uint8)
    scene = np.random.default_rng(0).integers(0, 255, (72, 128, 3), dtype=np.uint8)
    assert cut_score(thumbnail(black), thumbnail(scene)) > THRESHOLD
    assert cut_score(thumbnail(black), thumbnail(black)) == 0.0
    assert cut_score(thumbnail(black), thumbnail(np.full_like(black, 200))) > THRESHOLD


def test_the_sample_drive_has_its_cuts_at_the_black_separators_only(sample):
    cuts = SceneCutDetector(THRESHOLD)
    found = [i for i, image in enumerate(sample) if cuts.is_cut(thumbnail(image))]
    assert found and all(sample[i].mean() < 15 or sample[i - 1].mean() < 15 for i in found)


def test_a_cut_on_a_dropped_frame_still_shows_between_the_kept_frames(sample):
    """The pipeline feeds only kept frames: A, A, (B dropped), B is still one cut."""
    cuts = SceneCutDetector(THRESHOLD)
    kept = [sample[70], sample[71], sample[201]]
    assert [cuts.is_cut(thumbnail(image)) for image in kept] == [False, False, True]
