"""BoxTracker: the cover a frame between keyframes gets, from hand-made verdicts and from
random worlds (Hypothesis): objects appearing, vanishing, crossing, teleporting, scene
cuts, random keyframe schedules, misses, failed keyframes and dropped frames."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import TrackConfig
from edge.detect.tracking import BoxTracker
from edge.types import DetectionFailure, Detections, Label

MS = 1_000_000  # ns


def boxes(*rows: tuple[float, float, float, float], label: Label = Label.FACE) -> Detections:
    return Detections(np.array(rows, np.float32).reshape(-1, 4), np.full(len(rows), 0.9),
                      np.full(len(rows), int(label)))


def tracker(**overrides) -> BoxTracker:
    return BoxTracker(TrackConfig(**{"growth_per_frame": 0.01, **overrides}))


def covers(plan: Detections | DetectionFailure, box: tuple[float, float, float, float],
           label: Label = Label.FACE) -> bool:
    """Whether one box of the plan contains `box` whole."""
    assert isinstance(plan, Detections), plan
    x1, y1, x2, y2 = box
    xyxy = plan.xyxy[plan.label == int(label)]
    return bool(((xyxy[:, 0] <= x1 + 1e-3) & (xyxy[:, 1] <= y1 + 1e-3) & (xyxy[:, 2] >= x2 - 1e-3)
                 & (xyxy[:, 3] >= y2 - 1e-3)).any())


# ---- examples ---------------------------------------------------------------------------------------


def test_keyframe_gets_its_own_detections_exactly():
    t = tracker()
    t.update(0, boxes((10, 10, 30, 30)))
    np.testing.assert_allclose(t.plan(0).xyxy, [[10, 10, 30, 30]])


def test_frames_between_keyframes_get_the_interpolated_box_grown_with_distance():
    t = tracker(growth_per_frame=0.1)
    t.update(0, boxes((0, 0, 20, 20)))
    t.update(4, boxes((40, 0, 60, 20)))
    plan = t.plan(2)  # halfway, 2 frames from either side: 1.2x
    assert covers(plan, (18, -2, 42, 22))
    assert covers(plan, (-2, -2, 22, 22)) and covers(plan, (38, -2, 62, 22))  # both ends stay covered


def test_an_object_seen_once_and_missed_next_stays_covered_however_far_apart_the_keyframes():
    """Issue 11, case 1: keyframes 30 frames apart in live mode, a plate seen at one, missed at the next."""
    t = tracker(hold_frames=15, max_gap_frames=30)
    t.update(0, boxes((100, 100, 140, 120), label=Label.PLATE))
    t.update(30, Detections.empty())
    for frame in range(1, 30):
        assert covers(t.plan(frame), (100, 100, 140, 120), Label.PLATE), frame


def test_an_object_first_seen_on_a_keyframe_covers_every_frame_back_to_the_previous_one():
    t = tracker(hold_frames=0)
    t.update(0, Detections.empty())
    t.update(20, boxes((50, 50, 70, 70)))
    for frame in range(1, 20):
        assert covers(t.plan(frame), (50, 50, 70, 70)), frame


def test_a_wrong_match_only_adds_cover():
    """Two different faces matched as one: the interpolated box slides, the carried ones stay."""
    t = tracker(max_jump_per_frame=5.0)
    t.update(0, boxes((0, 0, 40, 40)))
    t.update(10, boxes((200, 0, 240, 40)))
    for frame in range(1, 10):
        plan = t.plan(frame)
        assert covers(plan, (0, 0, 40, 40)) and covers(plan, (200, 0, 240, 40)), frame


def test_a_track_lost_on_a_keyframe_is_still_carried_on_for_hold_frames():
    t = tracker(hold_frames=4, growth_per_frame=0.01)
    t.update(0, boxes((0, 0, 10, 10)))
    t.update(3, boxes((3, 0, 13, 10)))
    t.update(6, Detections.empty())
    t.update(9, Detections.empty())
    assert covers(t.plan(7), (7, 0, 17, 10))  # carried on at 1 px/frame past the miss at 6
    assert len(t.plan(8)) == 0  # 5 frames after it was last seen, and neither bracket saw it


def test_interpolation_bridges_a_keyframe_that_missed_the_object():
    t = tracker(hold_frames=10, growth_per_frame=0.01)
    t.update(0, boxes((0, 0, 10, 10)))
    t.update(4, Detections.empty())
    t.update(8, boxes((8, 0, 18, 10)))
    assert covers(t.plan(6), (6, 0, 16, 10))


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


def test_a_frame_without_a_keyframe_on_both_sides_fails_closed():
    t = tracker()
    assert isinstance(t.plan(0), DetectionFailure)
    t.update(3, boxes((0, 0, 10, 10)))
    assert isinstance(t.plan(2), DetectionFailure)  # nothing before it
    verdict = t.plan(4)  # nothing after it yet
    assert isinstance(verdict, DetectionFailure) and verdict.stale


def test_keyframes_too_far_apart_in_frames_fail_the_frames_between():
    t = tracker(max_gap_frames=10)
    t.update(0, boxes((0, 0, 10, 10)))
    t.update(11, boxes((0, 0, 10, 10)))
    verdict = t.plan(5)
    assert isinstance(verdict, DetectionFailure) and verdict.stale and "11 frames" in verdict.reason
    assert isinstance(t.plan(11), Detections)  # a keyframe is its own bracket


def test_keyframes_too_far_apart_in_time_fail_the_frames_between():
    t = tracker(max_gap_ms=500)
    t.update(0, boxes((0, 0, 10, 10)), t_ns=0)
    t.update(3, boxes((0, 0, 10, 10)), t_ns=400 * MS)
    t.update(6, boxes((0, 0, 10, 10)), t_ns=1000 * MS)  # frames dropped in between: 600 ms
    assert isinstance(t.plan(2), Detections)
    verdict = t.plan(4)
    assert isinstance(verdict, DetectionFailure) and "600 ms" in verdict.reason


def test_nothing_is_carried_or_matched_across_a_scene_cut():
    """Issue 11, case 3: face A until frame 9, a cut, face B elsewhere from frame 10."""
    t = tracker(max_jump_per_frame=5.0, growth_per_frame=0.03)
    t.update(0, boxes((0, 0, 100, 100)))
    t.note_cut(10)
    t.update(9, boxes((0, 0, 100, 100)))
    t.update(10, boxes((300, 0, 400, 100)))
    t.update(20, boxes((300, 0, 400, 100)))
    for frame in range(1, 10):
        plan = t.plan(frame)
        assert covers(plan, (0, 0, 100, 100)) and not covers(plan, (300, 0, 400, 100)), frame
    for frame in range(10, 20):
        plan = t.plan(frame)
        assert covers(plan, (300, 0, 400, 100)) and not (plan.xyxy[:, 0] < 250).any(), frame


def test_a_cut_without_a_keyframe_on_its_old_side_fails_the_frames_before_it():
    t = tracker()
    t.update(0, boxes((0, 0, 10, 10)))
    t.note_cut(5)
    t.update(6, boxes((50, 50, 60, 60)))
    for frame in (1, 2, 3, 4):
        assert isinstance(t.plan(frame), DetectionFailure), frame
    assert isinstance(t.plan(6), Detections)


def test_a_plan_does_not_depend_on_how_far_detection_ran_ahead():
    ahead, behind = tracker(), tracker()
    for t in (ahead, behind):
        t.update(0, boxes((0, 0, 20, 20)))
        t.update(3, boxes((3, 0, 23, 20)))
    ahead.update(6, boxes((6, 0, 26, 20), (200, 200, 220, 220)))
    for frame in (1, 2):
        np.testing.assert_array_equal(ahead.plan(frame).xyxy, behind.plan(frame).xyxy)


def test_extrapolating_a_shrinking_box_never_turns_it_inside_out():
    t = tracker(hold_frames=100, max_gap_frames=60)
    t.update(0, boxes((0, 0, 100, 100)))
    t.update(1, boxes((10, 10, 90, 90)))
    t.update(51, Detections.empty())
    plan = t.plan(50)
    assert (plan.xyxy[:, 2:] > plan.xyxy[:, :2]).all()


def test_out_of_order_keyframes_and_cuts_are_refused():
    t = tracker()
    t.update(5, Detections.empty())
    with pytest.raises(ValueError, match="after keyframe 5"):
        t.update(3, Detections.empty())
    with pytest.raises(ValueError, match="after keyframe 5"):
        t.note_cut(5)


def test_forgetting_keeps_what_frames_still_need_and_scenes_stay_apart():
    t = tracker(hold_frames=3)
    t.update(0, boxes((0, 0, 10, 10)))
    t.note_cut(4)
    t.update(3, Detections.empty())
    t.update(4, boxes((0, 0, 10, 10)))
    t.update(8, Detections.empty())
    t.forget_before(2)
    assert covers(t.plan(2), (0, 0, 10, 10))
    t.forget_before(6)
    t.note_cut(9)
    t.update(9, boxes((0, 0, 10, 10)))
    t.forget_before(9)
    assert len(t.plan(9)) == 1  # the scene-1 track is not matched into scene 2


# ---- properties -------------------------------------------------------------------------------------

GROWTH = 0.03
# Slow movers: the centre moves at most this share of the box side per frame and the size
# changes at most this factor per frame; the carried boxes alone must then contain them.
SLOW_SPEED = GROWTH / 4
SLOW_SCALE = GROWTH / 8


@dataclass
class Thing:
    label: int
    first: int
    last: int
    boxes: dict[int, np.ndarray]  # frame -> true xyxy


def _slow_thing(data: st.DataObject, first: int, last: int) -> Thing:
    x = data.draw(st.floats(0, 1200))
    y = data.draw(st.floats(0, 600))
    side = data.draw(st.floats(8, 200))
    aspect = data.draw(st.floats(0.3, 3.0))
    label = data.draw(st.sampled_from([int(Label.FACE), int(Label.PLATE)]))
    vx, vy = data.draw(st.floats(-1, 1)), data.draw(st.floats(-1, 1))
    scale = data.draw(st.floats(-1, 1))
    turn_at = data.draw(st.integers(first, last))  # a change of direction mid-way
    turn = data.draw(st.floats(-1, 1)), data.draw(st.floats(-1, 1))
    result = {}
    w, h = side, side * aspect
    for frame in range(first, last + 1):
        result[frame] = np.array([x, y, x + w, y + h])
        if frame == turn_at:
            vx, vy = turn
        step = SLOW_SPEED * min(w, h)
        x, y = x + vx * step, y + vy * step
        factor = 1 + scale * SLOW_SCALE
        x, y, w, h = x + w * (1 - factor) / 2, y + h * (1 - factor) / 2, w * factor, h * factor
    return Thing(label, first, last, result)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[int, list[int], list[Thing], list[int], dict[int, int]]:
    """(frame count, cuts, things, keyframes, frame times) with keyframes on both sides of each cut."""
    data = draw(st.data())
    count = draw(st.integers(2, 90))
    cuts = sorted(draw(st.sets(st.integers(1, count - 1), max_size=3)))
    scenes = list(zip([0, *cuts], [*cuts, count]))
    things = []
    for start, end in scenes:
        for _ in range(draw(st.integers(0, 4))):
            first = draw(st.integers(start, end - 1))
            last = draw(st.integers(first, end - 1))  # vanishes (or teleports: another thing appears)
            things.append(_slow_thing(data, first, last))
    keyframes = {0, count - 1}
    for cut in cuts:
        keyframes |= {cut - 1, cut}
    keyframes |= draw(st.sets(st.integers(0, count - 1), max_size=count // 2))
    # Frame times: mostly 33 ms apart, sometimes a run of dropped frames.
    times, now = {}, 0
    for frame in range(count):
        times[frame] = now
        now += 33 * MS * draw(st.sampled_from([1, 1, 1, 1, 2, 5]))
    return count, cuts, things, sorted(keyframes), times


def _replay(count: int, cuts: list[int], things: list[Thing], keyframes: list[int], times: dict[int, int],
            seen: dict[tuple[int, int], bool], failed: set[int], config: TrackConfig
            ) -> dict[int, Detections | DetectionFailure]:
    """Feed a tracker as the pipeline does: cuts before their keyframes, plans in order, forgetting."""
    tracker = BoxTracker(config)
    plans: dict[int, Detections | DetectionFailure] = {}
    pending_cuts, next_frame = list(cuts), 0
    for keyframe in keyframes:
        while pending_cuts and pending_cuts[0] <= keyframe:
            tracker.note_cut(pending_cuts.pop(0))
        if keyframe in failed:
            tracker.update(keyframe, DetectionFailure("scripted"), times[keyframe])
        else:
            rows = [(thing.boxes[keyframe], thing.label) for i, thing in enumerate(things)
                    if keyframe in thing.boxes and seen[(i, keyframe)]]
            found = Detections(np.array([r[0] for r in rows], np.float32).reshape(-1, 4), np.full(len(rows), 0.5),
                               np.array([r[1] for r in rows], np.int64)) if rows else Detections.empty()
            tracker.update(keyframe, found, times[keyframe])
        while next_frame <= keyframe:
            plans[next_frame] = tracker.plan(next_frame)
            tracker.forget_before(next_frame)
            next_frame += 1
    return plans


def _bracket(frame: int, keyframes: list[int]) -> tuple[int, int]:
    before = max(k for k in keyframes if k <= frame)
    after = min(k for k in keyframes if k >= frame)
    return before, after


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(world=worlds(), misses=st.data())
def test_every_object_detected_at_a_bracketing_keyframe_is_covered_or_the_frame_fails(world, misses):
    count, cuts, things, keyframes, times = world
    seen = {(i, k): misses.draw(st.booleans()) or misses.draw(st.booleans())
            for i, thing in enumerate(things) for k in keyframes if k in thing.boxes}
    failed = set(misses.draw(st.sets(st.sampled_from(keyframes), max_size=2)))
    config = TrackConfig(growth_per_frame=GROWTH, max_gap_frames=20, max_gap_ms=700.0, hold_frames=15)
    plans = _replay(count, cuts, things, keyframes, times, seen, failed, config)
    for frame, plan in plans.items():
        before, after = _bracket(frame, keyframes)
        if frame != before and (after - before > 20 or times[after] - times[before] > 700 * MS):
            assert isinstance(plan, DetectionFailure), (frame, before, after)  # the gap bound
        if isinstance(plan, DetectionFailure):
            # Failing closed is allowed only for a reason the rules name.
            assert (before in failed or after in failed or after - before > 20
                    or times[after] - times[before] > 700 * MS), (frame, plan)
            continue
        assert before not in failed and after not in failed
        for i, thing in enumerate(things):
            if frame in thing.boxes and (seen.get((i, before)) or seen.get((i, after))):
                assert covers(plan, tuple(thing.boxes[frame]), Label(thing.label)), (frame, i, before, after)


@PROPERTY
@given(count=st.integers(3, 60), speed=st.tuples(st.floats(-0.4, 0.4), st.floats(-0.4, 0.4)),
       side=st.floats(10, 120), label=st.sampled_from(list(Label)),
       keyframes=st.sets(st.integers(0, 59), max_size=30))
def test_a_fast_object_moving_straight_is_covered_by_interpolation(count, speed, side, label, keyframes):
    """Up to 0.45 box sides per frame (a passing car), seen on every keyframe, alone on its label."""
    keyframes = sorted({0, count - 1} | {k for k in keyframes if k < count})
    norm = float(np.hypot(*speed))
    if norm > 0.45:  # stay inside the matcher's reach (max_jump_per_frame 0.5 box sides per frame)
        speed = (speed[0] * 0.45 / norm, speed[1] * 0.45 / norm)
    truth = {f: np.array([500 + speed[0] * side * f, 300 + speed[1] * side * f, 0, 0]) for f in range(count)}
    for box in truth.values():
        box[2:] = box[:2] + side
    t = BoxTracker(TrackConfig(growth_per_frame=GROWTH, max_gap_frames=60, max_gap_ms=2000.0))
    for k in keyframes:
        t.update(k, boxes(tuple(truth[k]), label=label), t_ns=k * 33 * MS)
    for frame in range(count):
        assert covers(t.plan(frame), tuple(truth[frame] + [0.01, 0.01, -0.01, -0.01]), label), frame
