"""BoxTracker: what a frame between keyframes gets, from hand-made keyframe verdicts."""
from __future__ import annotations

import numpy as np
import pytest

from edge.config import TrackConfig
from edge.detect.guard import DetectionFailure
from edge.detect.tracking import BoxTracker
from edge.types import Detections, Label


def boxes(*rows: tuple[float, float, float, float], label: Label = Label.FACE) -> Detections:
    return Detections(np.array(rows, np.float32).reshape(-1, 4), np.full(len(rows), 0.9),
                      np.full(len(rows), int(label)))


def tracker(**overrides) -> BoxTracker:
    return BoxTracker(TrackConfig(**{"growth_per_frame": 0.0, **overrides}))


def only_box(plan: Detections) -> np.ndarray:
    assert isinstance(plan, Detections) and len(plan) == 1, plan
    return plan.xyxy[0]


def test_keyframe_gets_its_own_detections_exactly():
    t = tracker()
    t.update(0, boxes((10, 10, 30, 30)))
    np.testing.assert_allclose(only_box(t.plan(0)), [10, 10, 30, 30])


def test_frames_between_keyframes_are_interpolated_and_grow_with_distance():
    t = tracker(growth_per_frame=0.1)
    t.update(0, boxes((0, 0, 20, 20)))
    t.update(4, boxes((40, 0, 60, 20)))
    # Frame 1: centre 10 of the way, 1 frame from a detection, so 1.1x the size.
    box = only_box(t.plan(1))
    np.testing.assert_allclose((box[:2] + box[2:]) / 2, [20, 10], atol=1e-4)
    np.testing.assert_allclose(box[2:] - box[:2], [22, 22], atol=1e-4)
    box = only_box(t.plan(2))
    np.testing.assert_allclose(box[2:] - box[:2], [24, 24], atol=1e-4)  # 2 frames from either side


def test_a_track_first_seen_on_a_keyframe_also_covers_the_frames_before_it():
    t = tracker(hold_frames=5)
    t.update(0, Detections.empty())
    t.update(6, boxes((50, 50, 70, 70)))
    for frame in (1, 3, 5):
        np.testing.assert_allclose(only_box(t.plan(frame)), [50, 50, 70, 70])


def test_backward_cover_is_limited_to_hold_frames():
    t = tracker(hold_frames=2)
    t.update(0, Detections.empty())
    t.update(6, boxes((50, 50, 70, 70)))
    assert len(t.plan(4)) == 1 and len(t.plan(3)) == 0


def test_a_lost_track_is_held_then_released():
    t = tracker(hold_frames=4)
    t.update(0, boxes((0, 0, 10, 10)))
    t.update(3, boxes((3, 0, 13, 10)))
    t.update(6, Detections.empty())
    t.update(9, Detections.empty())
    np.testing.assert_allclose(only_box(t.plan(7)), [7, 0, 17, 10], atol=1e-4)  # carried on at 1 px/frame
    assert len(t.plan(8)) == 0  # 5 frames after it was last seen


def test_matching_keeps_one_track_per_object():
    t = tracker()
    t.update(0, boxes((0, 0, 20, 20), (100, 100, 120, 120)))
    t.update(3, boxes((6, 0, 26, 20), (100, 106, 120, 126)))
    plan = t.plan(1)
    assert len(plan) == 2  # interpolated, not four boxes (two old, two new)


def test_labels_never_match_each_other():
    t = tracker(hold_frames=0)
    t.update(0, boxes((0, 0, 20, 20), label=Label.FACE))
    t.update(2, boxes((0, 0, 20, 20), label=Label.PLATE))
    assert sorted(t.plan(2).label.tolist()) == [Label.PLATE]


def test_a_failed_keyframe_fails_every_frame_it_brackets():
    t = tracker()
    t.update(0, boxes((0, 0, 10, 10)))
    t.update(3, DetectionFailure("boom"))
    t.update(6, boxes((0, 0, 10, 10)))
    assert isinstance(t.plan(0), Detections)
    for frame in (1, 2, 3, 4, 5):
        assert isinstance(t.plan(frame), DetectionFailure), frame
    assert isinstance(t.plan(6), Detections)


def test_frames_with_no_detection_yet_or_a_stale_one_fail_closed():
    t = tracker(max_stale_frames=5)
    assert isinstance(t.plan(0), DetectionFailure)
    t.update(0, boxes((0, 0, 10, 10)))
    assert isinstance(t.plan(5), Detections)
    stale = t.plan(6)
    assert isinstance(stale, DetectionFailure) and stale.stale


def test_extrapolating_a_shrinking_box_never_turns_it_inside_out():
    t = tracker(hold_frames=100, max_stale_frames=100)
    t.update(0, boxes((0, 0, 100, 100)))
    t.update(1, boxes((10, 10, 90, 90)))
    box = only_box(t.plan(50))
    assert (box[2:] > box[:2]).all()


def test_a_plan_does_not_depend_on_how_far_detection_ran_ahead():
    ahead, behind = tracker(), tracker()
    for t in (ahead, behind):
        t.update(0, boxes((0, 0, 20, 20)))
        t.update(3, boxes((3, 0, 23, 20)))
    ahead.update(6, boxes((6, 0, 26, 20), (200, 200, 220, 220)))
    for frame in (1, 2):
        np.testing.assert_array_equal(ahead.plan(frame).xyxy, behind.plan(frame).xyxy)


def test_keyframes_out_of_order_are_refused():
    t = tracker()
    t.update(5, Detections.empty())
    with pytest.raises(ValueError, match="after keyframe 5"):
        t.update(3, Detections.empty())


def test_forgetting_keeps_what_frames_still_need():
    t = tracker(hold_frames=3)
    t.update(0, boxes((0, 0, 10, 10)))
    t.update(3, Detections.empty())
    t.update(6, Detections.empty())
    t.forget_before(2)
    assert len(t.plan(2)) == 1
    t.forget_before(5)
    assert len(t.plan(5)) == 0 and isinstance(t.plan(5), Detections)
