"""Blur-recall metrics on hand-built frames whose right answers are worked out in the comments."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge.bench.metrics import (BenchResult, FrameOutcome, MetricsAccumulator, average_precision,
                                match_detections)
from edge.bench.truth import GroundTruth
from edge.types import Detections, Label

FACE, PLATE = int(Label.FACE), int(Label.PLATE)
SHAPE = (100, 200)  # (height, width) of every test frame


def truth(key: str, rows: list[tuple], tracks: list[int] | None = None) -> GroundTruth:
    """rows: (x1, y1, x2, y2, label)."""
    xyxy = np.array([r[:4] for r in rows], np.float32).reshape(-1, 4)
    labels = np.array([r[4] for r in rows], np.int64)
    track = np.array(tracks if tracks is not None else [], np.int64)
    return GroundTruth(key, xyxy, labels, track, width=SHAPE[1], height=SHAPE[0])


def mask(*rects: tuple[int, int, int, int]) -> np.ndarray:
    """Bool mask with the given (x1, y1, x2, y2) rectangles set."""
    out = np.zeros(SHAPE, bool)
    for x1, y1, x2, y2 in rects:
        out[y1:y2, x1:x2] = True
    return out


def detections(rows: list[tuple]) -> Detections:
    """rows: (x1, y1, x2, y2, score, label)."""
    table = np.array(rows, np.float64).reshape(-1, 6)
    return Detections(table[:, :4], table[:, 4], table[:, 5].astype(np.int64))


def test_half_covered_box_fails_tau_09_and_passes_tau_05():
    frame = truth("0", [(0, 0, 10, 10, FACE)])
    strict, lenient = MetricsAccumulator(tau=0.9), MetricsAccumulator(tau=0.5)
    for accumulator in (strict, lenient):
        coverage = accumulator.add_frame(frame, mask((0, 0, 5, 10)))
        assert coverage.tolist() == [0.5]
    assert strict.result().classes["face"].recall == 0.0
    assert lenient.result().classes["face"].recall == 1.0
    curve = dict(zip(strict.result().taus, strict.result().classes["face"].recall_curve))
    assert (curve[0.5], curve[0.55], curve[0.9]) == (1.0, 0.0, 0.0)


def test_two_masks_cover_together_what_neither_covers_alone():
    frame = truth("0", [(0, 0, 20, 10, PLATE)])
    left, right = mask((0, 0, 10, 10)), mask((10, 0, 20, 10))
    accumulator = MetricsAccumulator()
    assert accumulator.add_frame(frame, left).tolist() == [0.5]
    assert accumulator.add_frame(frame, right).tolist() == [0.5]
    assert accumulator.add_frame(frame, left | right).tolist() == [1.0]
    assert accumulator.result().classes["plate"].recall == pytest.approx(1 / 3)


def test_empty_frame_and_frames_without_truth_divide_by_nothing():
    accumulator = MetricsAccumulator()
    accumulator.add_frame(truth("0", []), mask())
    empty = accumulator.result()
    assert empty.frames == 1 and empty.over_redaction == 0.0
    face = empty.classes["face"]
    assert (face.gt_boxes, face.recall, face.frame_leak_rate, face.longest_leak_run) == (0, None, None, None)
    assert face.recall_by_size["tiny"].recall is None and face.detector.ap50 is None
    # A leaked face in one frame; the frame without ground truth does not dilute the leak rate.
    accumulator.add_frame(truth("1", [(0, 0, 10, 10, FACE)]), mask())
    result = accumulator.result().classes["face"]
    assert (result.frames_with_objects, result.leaked_frames, result.frame_leak_rate) == (1, 1, 1.0)


def test_frames_hidden_whole_or_dropped_count_as_covered():
    accumulator = MetricsAccumulator()
    boxes = [(0, 0, 10, 10, FACE), (20, 20, 30, 30, PLATE)]
    assert accumulator.add_frame(truth("0", boxes), FrameOutcome.WHOLE_FRAME).tolist() == [1.0, 1.0]
    assert accumulator.add_frame(truth("1", boxes), FrameOutcome.DROPPED).tolist() == [1.0, 1.0]
    result = accumulator.result()
    assert (result.frames, result.frames_whole_frame, result.frames_dropped) == (2, 1, 1)
    assert result.classes["face"].recall == result.classes["plate"].recall == 1.0
    assert result.classes["face"].frame_leak_rate == 0.0
    # Everything outside the two 100-pixel boxes was lost: fully over-redacted.
    assert result.over_redaction == pytest.approx((20000 - 200) / 20000)
    assert result.over_redaction_regions_only is None


def test_over_redaction_on_a_known_mask():
    accumulator = MetricsAccumulator()
    # Box of 10x10 = 100 px inside a 20x20 = 400 px hidden square: 300 px hidden outside the box.
    accumulator.add_frame(truth("0", [(5, 5, 15, 15, FACE)]), mask((0, 0, 20, 20)))
    result = accumulator.result()
    assert result.over_redaction == pytest.approx(300 / 20000)
    assert result.over_redaction_regions_only == pytest.approx(300 / 20000)
    assert result.over_redaction_textured is None  # not measured: no source pixels were given


def test_textured_over_redaction_adds_up_over_frames():
    accumulator = MetricsAccumulator()
    accumulator.add_frame(truth("0", [(5, 5, 15, 15, FACE)]), mask((0, 0, 20, 20)), textured_outside=(30, 1000))
    accumulator.add_frame(truth("1", []), FrameOutcome.DROPPED, textured_outside=(500, 500))
    assert accumulator.result().over_redaction_textured == pytest.approx(530 / 1500)


def test_longest_leaked_run_per_track():
    accumulator = MetricsAccumulator()
    face_7 = (0, 0, 10, 10, FACE)
    face_8 = (50, 50, 60, 60, FACE)
    covered_7 = mask((0, 0, 10, 10))
    # track 7: leaked 0,1,2, covered 3, leaked 4,5 -> 3. track 8: leaked 0, absent 1, leaked 2 -> 1.
    script = {0: ([face_7, face_8], [7, 8], mask()), 1: ([face_7], [7], mask()), 2: ([face_7, face_8], [7, 8], mask()),
              3: ([face_7], [7], covered_7), 4: ([face_7], [7], mask()), 5: ([face_7], [7], mask())}
    for index, (rows, tracks, applied) in script.items():
        accumulator.add_frame(truth(str(index), rows, tracks), applied)
    face = accumulator.result().classes["face"]
    assert face.leak_run_by_track == {"7": 3, "8": 1}
    assert face.longest_leak_run == 3
    assert (face.frames_with_objects, face.leaked_frames) == (6, 5)


def test_hidden_by_stored_detail_is_kept_apart_from_coverage():
    accumulator = MetricsAccumulator()
    face_7, plate = (0, 0, 10, 10, FACE), (20, 0, 60, 40, PLATE)
    # Covered but its pixels kept their detail (frame 0); left uncovered yet its detail lost (frame 1).
    accumulator.add_frame(truth("0", [face_7, plate], [7, 1]), mask((0, 0, 60, 40)), hidden=np.array([False, True]))
    accumulator.add_frame(truth("1", [face_7, plate], [7, 1]), mask(), hidden=np.array([True, False]))
    accumulator.add_frame(truth("2", [face_7], [7]), mask(), hidden=np.array([False]))
    accumulator.add_frame(truth("3", [face_7], [7]), mask(), hidden=np.array([False]))
    accumulator.add_frame(truth("4", [face_7], [7]), mask())  # not measured on pixels: left out
    accumulator.add_frame(truth("5", [face_7, plate], [7, 1]), FrameOutcome.WHOLE_FRAME)  # hides every box
    accumulator.add_frame(truth("6", [plate], [1]), FrameOutcome.DROPPED)
    face, plate_metrics = (accumulator.result().classes[name] for name in ("face", "plate"))
    assert (face.hidden, face.hidden_scored, face.gt_boxes) == (pytest.approx(2 / 5), 5, 6)
    assert (plate_metrics.hidden, plate_metrics.hidden_scored) == (pytest.approx(3 / 4), 4)
    assert face.recall == pytest.approx(2 / 6) and plate_metrics.recall == pytest.approx(3 / 4)  # coverage as before
    assert (face.hidden_by_size["tiny"].recall, face.hidden_by_size["tiny"].boxes) == (pytest.approx(2 / 5), 5)
    assert plate_metrics.hidden_by_size["medium"].boxes == 4 and plate_metrics.hidden_by_size["large"].recall is None
    # Track 7 kept its detail in frames 0, 2 and 3 (1 broke the run): 2. Frame 4 was not measured.
    assert face.detail_leak_run_by_track == {"7": 2} and face.longest_detail_leak_run == 2
    assert plate_metrics.longest_detail_leak_run == 1 and face.longest_leak_run == 4
    with pytest.raises(ValueError, match="hidden flags"):
        accumulator.add_frame(truth("7", [face_7]), mask(), hidden=np.array([True, True]))


def test_reports_from_before_stored_detail_still_load():
    accumulator = MetricsAccumulator()
    accumulator.add_frame(truth("0", [(0, 0, 10, 10, FACE)], [3]), mask(), hidden=np.array([True]))
    data = json.loads(json.dumps(accumulator.result().to_dict()))
    new = ("hidden", "hidden_scored", "hidden_by_size", "longest_detail_leak_run", "detail_leak_run_by_track")
    for metrics in data["classes"].values():
        for key in new:
            del metrics[key]
    old = BenchResult.from_dict(data)
    assert old.classes["face"].recall == 0.0 and old.classes["face"].hidden is None
    assert old.classes["face"].hidden_by_size == {} and old.classes["face"].longest_detail_leak_run is None


def test_recall_by_box_height_band():
    accumulator = MetricsAccumulator()
    rows = [(0, 0, 10, 10, FACE), (20, 0, 40, 20, FACE), (50, 0, 100, 50, FACE), (100, 0, 200, 100, FACE)]
    accumulator.add_frame(truth("0", rows), mask((0, 0, 10, 10), (100, 0, 200, 100)))
    bands = accumulator.result().classes["face"].recall_by_size
    assert {name: (band.recall, band.boxes) for name, band in bands.items()} == {
        "tiny": (1.0, 1), "small": (0.0, 1), "medium": (0.0, 1), "large": (1.0, 1)}


def test_ap50_precision_and_recall_on_a_hand_made_set():
    # 3 faces over two frames. Detections by score: .9 hit, .8 miss, .7 hit, .6 miss.
    # Precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3; envelope 1 then 2/3:
    # AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    accumulator = MetricsAccumulator()
    frame_a = truth("0", [(0, 0, 10, 10, FACE), (50, 50, 60, 60, FACE)])
    frame_b = truth("1", [(100, 0, 120, 20, FACE)])
    accumulator.add_frame(frame_a, mask(), detections([(0, 0, 10, 10, 0.9, FACE), (150, 50, 160, 60, 0.8, FACE)]))
    accumulator.add_frame(frame_b, mask(), detections([(101, 0, 121, 20, 0.7, FACE), (0, 80, 5, 85, 0.6, FACE)]))
    accumulator.add_frame(truth("2", [(0, 0, 10, 10, FACE)]), mask(), None)  # detector did not run: not counted
    result = accumulator.result()
    detector = result.classes["face"].detector
    assert result.frames_detector_ran == 2
    assert (detector.detections, detector.true_positives, detector.gt_boxes) == (4, 2, 3)
    assert detector.precision == pytest.approx(0.5) and detector.recall == pytest.approx(2 / 3)
    assert detector.ap50 == pytest.approx(5 / 9)


def test_greedy_matching_gives_a_box_to_one_detection_and_respects_class():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    hits = match_detections(gt, np.array([[0, 0, 10, 10], [1, 0, 11, 10]], np.float32), np.array([0.5, 0.9]))
    assert hits.tolist() == [False, True]  # the higher score takes the box, the duplicate is a false positive
    accumulator = MetricsAccumulator()
    accumulator.add_frame(truth("0", [(0, 0, 10, 10, FACE)]), mask(), detections([(0, 0, 10, 10, 0.9, PLATE)]))
    result = accumulator.result().classes
    assert result["face"].detector.true_positives == 0 and result["plate"].detector.precision == 0.0


def test_average_precision_edges():
    assert average_precision(np.array([0.9]), np.array([True]), 0) is None
    assert average_precision(np.array([]), np.array([], bool), 2) == 0.0
    assert average_precision(np.array([0.9, 0.8]), np.array([True, True]), 2) == pytest.approx(1.0)


def test_result_is_plain_json_and_round_trips():
    accumulator = MetricsAccumulator()
    accumulator.add_frame(truth("0", [(0, 0, 10, 10, FACE)], [3]), mask(), detections([(0, 0, 10, 10, 0.9, FACE)]),
                          hidden=np.array([False]))
    accumulator.add_frame(truth("1", []), FrameOutcome.WHOLE_FRAME)
    result = accumulator.result()
    assert result.classes["face"].hidden_by_size["tiny"].recall == 0.0
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert BenchResult.from_dict(json.loads(text)) == result


def test_mask_must_match_the_frame():
    accumulator = MetricsAccumulator()
    with pytest.raises(ValueError, match="mask"):
        accumulator.add_frame(truth("0", []), np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="bool"):
        accumulator.add_frame(truth("0", []), np.zeros(SHAPE, np.uint8))
    with pytest.raises(ValueError, match="size unknown"):
        accumulator.add_frame(GroundTruth.empty("0", (0, 0)), FrameOutcome.WHOLE_FRAME)
