"""The YOLO-family models run at any input size (scripts/free_input_size.py) and see what they saw at 640x640.

A wrong grid or anchor rewrite would not crash: it would shift or scale every box. So the
rewrite is checked the way it could fail: on real frames of the committed sample, the boxes
found on a 640x384 input must be the boxes found on the 640x640 letterbox of the same frame.
"""

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import load_script
from edge.camera import SAMPLE_VIDEO
from edge.config import load_config
from edge.detect.boxes import iou_matrix, letterbox_blob, nms
from edge.detect.coco import PERSON, VEHICLES, decode_yolov5
from edge.detect.factory import build_detectors
from edge.detect.models import default_models_dir
from edge.detect.yolo import decode_yolov8

def sample_frames(indices=tuple(range(0, 360, 30))) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames, index = [], 0
    while len(frames) < len(indices):
        ok, frame = capture.read()
        assert ok
        if index in indices:
            frames.append(frame)
        index += 1
    return frames


def boxes_in_frame(session: ort.InferenceSession, frame: np.ndarray, square: bool, decode) -> np.ndarray:
    blob, geometry = letterbox_blob(frame, 640, square=square)
    xyxy, score = decode(session.run(None, {session.get_inputs()[0].name: blob}))
    keep = nms(xyxy, score, 0.5)
    keep = keep[score[keep] >= 0.2]
    return geometry.to_source(xyxy[keep])


def assert_same_boxes(pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Over the frames, (square, wide) boxes: nine in ten of either found by the other (IoU >= 0.8)."""
    matched, total = 0, 0
    for square, wide in pairs:
        for ours, theirs in ((square, wide), (wide, square)):
            total += len(ours)
            if len(ours) and len(theirs):
                matched += int((iou_matrix(ours, theirs).max(axis=1) >= 0.8).sum())
    assert total >= 10 and matched >= 0.9 * total, (matched, total)  # a wrong grid or stride shifts every box


@pytest.mark.parametrize("filename, decode", [
    ("yolov5n_v6.1_coco.onnx", lambda out: decode_yolov5(out[0], (PERSON, *VEHICLES), 0.2)[:2]),
    ("plate_yolov8n_safelicensing_640.onnx", lambda out: decode_yolov8(out[0], 0.2)),
])
def test_the_rewrite_keeps_640x640_outputs_exact_and_finds_the_same_boxes_at_640x384(tmp_path, filename, decode):
    """Run on the committed fp32 files (the same graph structure as the int8 files it was applied to)."""
    script = load_script("free_input_size")
    source = default_models_dir() / filename
    rewritten = tmp_path / filename
    onnx.save(script.free_input_size(onnx.load(str(source))), str(rewritten))
    square_model = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    any_size = ort.InferenceSession(str(rewritten), providers=["CPUExecutionProvider"])
    assert isinstance(any_size.get_inputs()[0].shape[2], str)
    pairs = []
    for frame in sample_frames():
        blob, _ = letterbox_blob(frame, 640)
        name = square_model.get_inputs()[0].name
        for a, b in zip(square_model.run(None, {name: blob}), any_size.run(None, {name: blob})):
            assert np.array_equal(a, b)
        wide, _ = letterbox_blob(frame, 640, square=False)
        assert wide.shape == (1, 3, 384, 640)
        pairs.append((boxes_in_frame(square_model, frame, True, decode),
                      boxes_in_frame(any_size, frame, False, decode)))
    assert_same_boxes(pairs)


def test_the_shipped_detectors_take_16_9_frames_as_640x384_and_find_what_the_square_input_found():
    union, plates, second = build_detectors(load_config(None).detect)
    models = [m for m in union.models if hasattr(m, "any_size")] + [plates, second._coco]
    assert [type(m).__name__ for m in models] == ["Yolo5FaceDetector", "PlateYoloDetector", "CocoDetector"]
    frames = sample_frames()
    for model in models:
        assert model.any_size
        pairs = []
        for frame in frames:
            wide = model.detect(frame)
            model.any_size = False  # the same model fed the 640x640 letterbox, as before the rewrite
            square = model.detect(frame)
            model.any_size = True
            (square_xyxy, square_score), (wide_xyxy, wide_score) = (
                (d[0], d[1]) if isinstance(d, tuple) else (d.xyxy, d.score) for d in (square, wide))
            pairs.append((square_xyxy[square_score >= 0.2], wide_xyxy[wide_score >= 0.2]))
        assert_same_boxes(pairs)
