"""The mirrored look (`detect.mirror`): boxes mapped back exactly, never less hidden, and when it runs."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.detect.guard import GuardedDetector
from edge.detect.mirror import flip_boxes, merge_looks
from edge.types import Detections, Label

WIDTH = 640


@st.composite
def boxes(draw, max_count: int = 6) -> np.ndarray:
    count = draw(st.integers(0, max_count))
    rows = []
    for _ in range(count):
        x1 = draw(st.integers(0, WIDTH - 2))
        y1 = draw(st.integers(0, 400))
        rows.append([x1, y1, draw(st.integers(x1 + 1, WIDTH)), y1 + draw(st.integers(1, 80))])
    return np.array(rows, np.float32).reshape(-1, 4)


@given(boxes())
def test_flipping_boxes_twice_gives_them_back(xyxy):
    assert np.array_equal(flip_boxes(flip_boxes(xyxy, WIDTH), WIDTH), xyxy)
    flipped = flip_boxes(xyxy, WIDTH)
    assert (flipped[:, 0] <= flipped[:, 2]).all()


def _detections(xyxy: np.ndarray, labels: list[int]) -> Detections:
    return Detections(xyxy, np.full(len(xyxy), 0.5, np.float32), np.array(labels[:len(xyxy)], np.int64))


@settings(max_examples=200)
@given(boxes(), boxes(), st.lists(st.sampled_from([Label.FACE, Label.PLATE]), min_size=6, max_size=6),
       st.lists(st.sampled_from([Label.FACE, Label.PLATE]), min_size=6, max_size=6))
def test_two_looks_hide_at_least_every_box_either_found_under_its_own_label(first, second, labels1, labels2):
    a, b = _detections(first, labels1), _detections(second, labels2)
    merged = merge_looks(a, b)
    for look in (a, b):
        for box, label in zip(look.xyxy, look.label):
            same = merged.xyxy[merged.label == label]
            inside = ((same[:, :2] <= box[:2] + 1e-3).all(axis=1) & (same[:, 2:] >= box[2:] - 1e-3).all(axis=1))
            assert inside.any()


class _LeftOnly:
    """A model that only sees a bright object when it sits in the image's left half (as a face model that
    only finds faces turned one way); counts its calls."""

    name = "left_only"
    mirrored_look = True

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image_bgr: np.ndarray) -> Detections:
        self.calls += 1
        ys, xs = np.nonzero(image_bgr[..., 0] > 200)
        if len(xs) == 0 or xs.mean() >= image_bgr.shape[1] / 2:
            return Detections.empty()
        return Detections([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], [0.9], [Label.FACE])


class _NotMirrored(_LeftOnly):
    name = "not_mirrored"
    mirrored_look = False


def _image_with_object_on_the_right() -> np.ndarray:
    image = np.zeros((120, 200, 3), np.uint8)
    image[30:60, 150:180] = 255
    return image


def _detect(mirror: str, still: bool, model=None) -> Detections:
    guard = GuardedDetector([model or _LeftOnly()], timeout_s=5, mirror=mirror)
    try:
        found = guard.detect(_image_with_object_on_the_right(), still=still)
    finally:
        guard.close()
    assert isinstance(found, Detections)
    return found


def test_the_mirrored_look_finds_what_only_the_flipped_image_shows_at_its_place_in_the_original():
    found = _detect("always", still=False)
    assert found.xyxy.tolist() == [[150, 30, 180, 60]]


def test_stills_look_twice_at_photos_only_and_off_never():
    assert len(_detect("stills", still=True)) == 1
    assert len(_detect("stills", still=False)) == 0
    assert len(_detect("off", still=True)) == 0


def test_a_model_without_a_mirrored_look_runs_once():
    model = _NotMirrored()
    assert len(_detect("always", still=True, model=model)) == 0 and model.calls == 1


def test_with_real_models_the_mirrored_look_finds_the_same_whichever_way_the_image_faces():
    from conftest import small_frames

    from edge.camera import SAMPLE_VIDEO
    from edge.config import DetectConfig
    from edge.detect.factory import build_detectors, guarded

    base = DetectConfig()
    config = replace(base, mirror="always", mirror_every=1, people=replace(base.people, enabled=False))
    guard = guarded(build_detectors(config), config, live=False)
    try:
        for image in small_frames(SAMPLE_VIDEO, (960, 540), [30, 150]).values():
            found = guard.detect(image)
            mirrored = guard.detect(np.ascontiguousarray(image[:, ::-1]))
            assert isinstance(found, Detections) and isinstance(mirrored, Detections) and len(found)
            for label in (Label.FACE, Label.PLATE):
                expected = found.xyxy[found.label == label]
                got = flip_boxes(mirrored.xyxy[mirrored.label == label], image.shape[1])
                assert len(expected) == len(got)
                order = np.lexsort(expected.T[::-1]), np.lexsort(got.T[::-1])
                np.testing.assert_allclose(expected[order[0]], got[order[1]], atol=0.05)
    finally:
        guard.close()


def test_files_look_twice_at_every_keyframe_of_a_file_and_never_on_a_live_camera():
    from edge.detect.factory import mirror_mode

    assert mirror_mode("files", live=False) == "always"
    assert mirror_mode("files", live=True) == "stills"  # a live camera has no stills: it never looks twice
    assert [mirror_mode(m, live=True) for m in ("off", "stills", "always")] == ["off", "stills", "always"]


def test_mirror_every_n_looks_twice_at_every_n_th_frame_and_at_every_still():
    model = _LeftOnly()
    guard = GuardedDetector([model], timeout_s=5, mirror="always", mirror_every=2)
    image = _image_with_object_on_the_right()
    try:
        found = []
        for still in (False, False, False, True, False):
            before = model.calls
            found.append((len(guard.detect(image, still=still)), model.calls - before))
    finally:
        guard.close()
    assert found == [(1, 2), (0, 1), (1, 2), (1, 2), (0, 1)]


class _WithCloserLook(_LeftOnly):
    """A model with a closer look for photos that finds the object wherever it is."""

    def __init__(self) -> None:
        super().__init__()
        self.still_calls = 0

    def detect_still(self, image_bgr: np.ndarray) -> Detections:
        self.still_calls += 1
        ys, xs = np.nonzero(image_bgr[..., 0] > 200)
        return Detections([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], [0.9], [Label.FACE])


def test_a_photo_gets_the_closer_look_both_ways_and_a_video_frame_the_ordinary_one():
    model = _WithCloserLook()
    assert _detect("stills", still=True, model=model).xyxy.tolist() == [[150, 30, 180, 60]]
    assert (model.still_calls, model.calls) == (2, 0)  # the photo and its mirror image, both looked at closely
    assert len(_detect("stills", still=False, model=model)) == 0  # a video frame: the ordinary look, once
    assert (model.still_calls, model.calls) == (2, 1)
