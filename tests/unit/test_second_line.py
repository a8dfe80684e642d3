"""The face union, head geometry, the COCO and YOLO5Face decoders, and plates searched inside vehicles."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.detect.coco import PERSON, decode_yolov5
from edge.detect.heads import face_to_head, merge_overlapping, person_heads
from edge.detect.second_line import pack, render, rows_used, to_frame
from edge.detect.union import FaceUnion
from edge.detect.yolo5face import decode_yolo5face
from edge.types import Detections, Label


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_yolo5face_decodes_one_anchor_to_its_box():
    outputs = {f"stride_{s}": np.full((1, 3, 640 // s, 640 // s, 16), -20, np.float32) for s in (8, 16, 32)}
    head = outputs["stride_16"][0, 1, 5, 7]  # anchor 1 of stride 16 is 43 x 55
    head[:4] = _logit(0.5)  # centre offset 0.5 -> cell centre; size (2 * 0.5)^2 = 1 anchor
    head[4], head[15] = _logit(0.9), _logit(0.8)
    xyxy, score = decode_yolo5face(outputs, score_threshold=0.5)
    cx, cy = (0.5 * 2 - 0.5 + 7) * 16, (0.5 * 2 - 0.5 + 5) * 16
    assert xyxy[0].tolist() == pytest.approx([cx - 21.5, cy - 27.5, cx + 21.5, cy + 27.5], abs=1e-3)
    assert score.tolist() == pytest.approx([0.72], abs=1e-4)


def test_yolo5face_rejects_a_wrong_head_shape():
    with pytest.raises(ValueError, match="YOLO5Face stride 8"):
        decode_yolo5face({"stride_8": np.zeros((1, 3, 80, 80, 15), np.float32)}, 0.5)


def test_yolov5_keeps_wanted_classes_scored_objectness_times_class():
    output = np.zeros((1, 4, 85), np.float32)
    output[0, 0, :5] = [100, 100, 20, 40, 0.9]
    output[0, 0, 5 + PERSON] = 0.8
    output[0, 1, :5] = [300, 300, 60, 30, 0.9]
    output[0, 1, 5 + 2] = 0.7  # car
    output[0, 2, :5] = [50, 50, 10, 10, 0.9]
    output[0, 2, 5 + 16] = 0.99  # dog: not wanted
    xyxy, score, class_id = decode_yolov5(output, (PERSON, 2), score_threshold=0.3)
    assert class_id.tolist() == [PERSON, 2]
    assert score.tolist() == pytest.approx([0.72, 0.63])
    assert xyxy[0].tolist() == [90, 80, 110, 120]


def test_a_face_box_widens_to_the_head_about_a_raised_centre():
    head = face_to_head(np.array([[100, 100, 140, 150]], np.float32), 1.5, 2.0, 0.1)
    assert head.tolist() == [[90, 70, 150, 170]]  # centre (120, 125) raised by 5, 60 x 100


def test_a_person_s_head_sits_at_the_top_and_is_never_taller_than_its_share():
    standing, sitting = person_heads(np.array([[0, 0, 40, 280], [0, 0, 100, 200]], np.float32), 0.5, 0.3)
    assert standing.tolist() == pytest.approx([10, 0, 30, 26])  # 20 wide, 1.3 x 20 tall
    assert sitting.tolist() == pytest.approx([25, 0, 75, 60])  # 50 wide, at most 0.3 x 200 tall


def test_a_bust_anywhere_in_the_frame_gets_the_region_of_a_person_close_to_the_camera():
    # 1.5 times as tall as wide, ending far above the frame's bottom: seen down to the chest, or cut off by a car.
    (bust,) = person_heads(np.array([[100, 50, 300, 350]], np.float32), 0.5, 0.3, frame_height=1080)
    assert bust.tolist() == pytest.approx([120, 50, 280, 200])  # 0.8 of the width, half the height


def test_a_person_cut_off_by_the_frame_s_bottom_edge_gets_a_larger_head_region():
    (close,) = person_heads(np.array([[0, 100, 200, 480]], np.float32), 0.5, 0.3, frame_height=480)
    assert close.tolist() == pytest.approx([20, 100, 180, 290])  # 0.8 of the width, half the height


boxes = st.lists(st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(1, 120), st.floats(1, 120)),
                 min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(boxes)
def test_merging_overlaps_never_hides_less_than_every_input_box(raw):
    xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in raw], np.float32).reshape(-1, 4)
    merged, score = merge_overlapping(xyxy, np.ones(len(xyxy), np.float32), 0.3)
    assert len(merged) == len(score) <= len(xyxy)
    for box in xyxy:  # each input box lies inside one merged box
        inside = ((merged[:, :2] <= box[:2] + 1e-3) & (merged[:, 2:] >= box[2:] - 1e-3)).all(axis=1)
        assert inside.any()


class _Fixed:
    def __init__(self, xyxy):
        self.name = "fixed"
        self._xyxy = np.array(xyxy, np.float32).reshape(-1, 4)

    def detect(self, image_bgr):
        return Detections(self._xyxy, np.full(len(self._xyxy), 0.9), np.full(len(self._xyxy), Label.FACE))


def test_the_union_counts_a_face_two_models_found_once_and_keeps_a_face_only_one_found():
    union = FaceUnion([_Fixed([[100, 100, 140, 150], [400, 100, 420, 125]]), _Fixed([[102, 98, 144, 152]])],
                      1.0, 1.0, 0.0)
    found = union.detect(np.zeros((480, 640, 3), np.uint8))
    assert (found.label == Label.FACE).all()
    assert sorted(found.xyxy.tolist()) == [[100, 98, 144, 152], [400, 100, 420, 125]]


cutout_sizes = st.lists(st.tuples(st.integers(0, 1800), st.integers(0, 1000), st.integers(12, 900),
                                  st.integers(12, 700)), min_size=0, max_size=25)


@settings(max_examples=60, deadline=None)
@given(cutout_sizes, st.integers(1, 3))
def test_packed_cutouts_stay_on_their_canvas_and_never_overlap(raw, max_canvases):
    cut = [(x, y, x + w, y + h) for x, y, w, h in raw]
    placements = pack(cut, 640, max_canvases)
    assert len(placements) <= len(cut)
    for p in placements:
        w, h = p.size
        assert 0 <= p.canvas < max_canvases and p.x + w <= 640 and p.y + h <= 640
    for a in placements:
        for b in placements:
            if a is b or a.canvas != b.canvas:
                continue
            (aw, ah), (bw, bh) = a.size, b.size
            assert a.x + aw <= b.x or b.x + bw <= a.x or a.y + ah <= b.y or b.y + bh <= a.y


def test_a_box_found_on_a_canvas_maps_back_to_its_vehicle_in_the_frame():
    placements = pack([(1000, 600, 1200, 700), (10, 20, 1400, 900)], 640, 2)
    small = next(p for p in placements if p.source_xyxy == (1000, 600, 1200, 700))
    large = next(p for p in placements if p.source_xyxy == (10, 20, 1400, 900))
    assert small.scale == 1.0 and large.scale < 1.0
    on_canvas = np.array([[small.x + 50, small.y + 40, small.x + 90, small.y + 52],
                          [large.x + 64, large.y + 64, large.x + 128, large.y + 96]], np.float32)
    frame_xyxy = np.concatenate([to_frame(on_canvas, np.ones(2, np.float32), placements, c)[0]
                                 for c in sorted({small.canvas, large.canvas})])
    expected = [[1050, 640, 1090, 652],
                [10 + 64 / large.scale, 20 + 64 / large.scale, 10 + 128 / large.scale, 20 + 96 / large.scale]]
    assert np.allclose(sorted(frame_xyxy.tolist()), sorted(expected), atol=1e-3)


def test_a_canvas_for_an_any_size_model_ends_below_its_lowest_cutout_and_holds_each_cutout_unscaled():
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8)
    placements = pack([(100, 300, 260, 420), (700, 350, 800, 410), (900, 100, 1000, 180)], 640, 2)
    assert max(p.y + p.size[1] for p in placements) == 120 and rows_used(placements, 0) == 128
    canvas = render(frame, placements, 0, 640, rows_used(placements, 0))
    assert canvas.shape == (128, 640, 3)
    for p in placements:
        x1, y1, x2, y2 = p.source_xyxy
        assert np.array_equal(canvas[p.y:p.y + y2 - y1, p.x:p.x + x2 - x1], frame[y1:y2, x1:x2])
    assert np.array_equal(render(frame, placements, 0, 640)[:128], canvas)  # the square canvas's top rows


def test_plates_of_small_cars_are_found_inside_vehicles_where_the_whole_frame_misses_them():
    """The sample's frame 150 pasted at native size into a 2560 x 1440 frame: the whole-frame pass sees
    its plates at a quarter size; the vehicle canvases see them whole."""
    import cv2

    from edge.bench.annotations import load_sample_truth
    from edge.camera import SAMPLE_VIDEO
    from edge.config import DetectConfig
    from edge.detect.boxes import iou_matrix
    from edge.detect.factory import build_detectors

    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 150)
    _ok, frame = capture.read()
    capture.release()
    truth = load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))[150]
    big = np.full((1440, 2560, 3), 114, np.uint8)
    big[700:1420, 1260:2540] = frame
    plates = truth.xyxy[truth.label == Label.PLATE] + np.array([1260, 700, 1260, 700], np.float32)
    base = DetectConfig()
    config = replace(base, faces=replace(base.faces, enabled=False))
    whole_frame, second_line = build_detectors(config)
    alone = whole_frame.detect(big)
    with_vehicles = second_line.detect(big)
    found_alone = iou_matrix(plates, alone.xyxy).max(axis=1) > 0.5 if len(alone) else np.zeros(len(plates), bool)
    found = iou_matrix(plates, with_vehicles.xyxy[with_vehicles.label == Label.PLATE]).max(axis=1) > 0.5
    assert found.all() and found_alone.sum() < len(plates)


class _CountingCoco:
    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image_bgr):
        self.calls += 1
        return (np.array([[100, 50, 140, 200]], np.float32), np.array([0.9], np.float32), np.array([PERSON]))


def test_a_live_second_line_runs_on_every_n_th_keyframe_and_finds_nothing_between():
    from edge.config import PeopleConfig
    from edge.detect.second_line import SecondLine

    coco = _CountingCoco()
    line = SecondLine(coco, None, PeopleConfig(plates_in_vehicles=False), every=2)
    found = [len(line.detect(np.zeros((240, 320, 3), np.uint8))) for _ in range(5)]
    assert found == [1, 0, 1, 0, 1] and coco.calls == 3


def test_files_run_the_second_line_on_every_keyframe_and_live_sources_every_n_th():
    from edge.config import DetectConfig
    from edge.detect.factory import build_detectors

    base = DetectConfig()
    config = replace(base, faces=replace(base.faces, enabled=False), plates=replace(base.plates, enabled=False),
                     people=replace(base.people, live_every=3))
    (offline,) = build_detectors(config)
    (live,) = build_detectors(config, live=True)
    assert offline._every == 1 and live._every == 3
