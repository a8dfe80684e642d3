"""The three decoders on hand-built raw outputs, then the real models on real pixels."""

from dataclasses import replace

import numpy as np
import pytest

from edge.detect.centerface import decode_centerface
from edge.detect.yolo import decode_yolov8
from edge.detect.yunet import STRIDES, decode_yunet


def _yunet_outputs(height: int, width: int) -> dict[str, np.ndarray]:
    outputs = {}
    for stride in STRIDES:
        n = (height // stride) * (width // stride)
        outputs[f"cls_{stride}"] = np.zeros((1, n, 1), np.float32)
        outputs[f"obj_{stride}"] = np.zeros((1, n, 1), np.float32)
        outputs[f"bbox_{stride}"] = np.zeros((1, n, 4), np.float32)
    return outputs


def test_yunet_decodes_anchor_offsets_and_sizes():
    height, width = 64, 96  # stride-16 grid is 4 rows x 6 cols
    outputs = _yunet_outputs(height, width)
    anchor = 2 * 6 + 3  # row 2, col 3
    outputs["cls_16"][0, anchor, 0] = 0.81
    outputs["obj_16"][0, anchor, 0] = 1.0
    outputs["bbox_16"][0, anchor] = [0.5, 0.25, np.log(2.0), np.log(3.0)]
    xyxy, score = decode_yunet(outputs, height, width, score_threshold=0.5)
    assert score.tolist() == pytest.approx([0.9])  # sqrt(cls * obj)
    cx, cy, w, h = (3 + 0.5) * 16, (2 + 0.25) * 16, 2 * 16, 3 * 16
    np.testing.assert_allclose(xyxy[0], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=1e-5)


def test_yunet_threshold_and_grid_mismatch():
    outputs = _yunet_outputs(64, 96)
    outputs["cls_8"][0, 0, 0] = outputs["obj_8"][0, 0, 0] = 0.2
    assert len(decode_yunet(outputs, 64, 96, score_threshold=0.5)[0]) == 0
    with pytest.raises(ValueError, match="stride 8"):
        decode_yunet(outputs, 128, 96, score_threshold=0.5)


def test_centerface_decodes_peak_scale_and_offset():
    heat = np.zeros((1, 1, 10, 12), np.float32)
    scale = np.zeros((1, 2, 10, 12), np.float32)
    offset = np.zeros((1, 2, 10, 12), np.float32)
    heat[0, 0, 4, 5] = 0.7
    scale[0, :, 4, 5] = [np.log(10.0), np.log(8.0)]  # height 40, width 32 after x4
    offset[0, :, 4, 5] = [0.25, 0.5]
    xyxy, score = decode_centerface(heat, scale, offset, score_threshold=0.5)
    cy, cx = (4 + 0.25 + 0.5) * 4, (5 + 0.5 + 0.5) * 4
    np.testing.assert_allclose(xyxy[0], [cx - 16, cy - 20, cx + 16, cy + 20], rtol=1e-5)
    assert score.tolist() == pytest.approx([0.7])


def test_yolov8_decodes_centre_format_and_filters():
    output = np.zeros((1, 5, 3), np.float32)
    output[0, :, 0] = [100, 50, 40, 20, 0.9]
    output[0, :, 1] = [300, 300, 10, 10, 0.05]
    output[0, :, 2] = [10, 10, 4, 4, 0.5]
    xyxy, score = decode_yolov8(output, score_threshold=0.3)
    assert xyxy.tolist() == [[80, 40, 120, 60], [8, 8, 12, 12]]
    assert score.tolist() == pytest.approx([0.9, 0.5])


def test_yolov8_rejects_wrong_shape():
    with pytest.raises(ValueError, match="YOLOv8 output"):
        decode_yolov8(np.zeros((1, 3, 10), np.float32), 0.5)


# ---- the real models, on crops of the sample clip (faces and plates with known boxes) ----

@pytest.fixture(scope="module")
def sample_truth_frames():
    from conftest import read_all_frames
    from edge.bench.annotations import load_sample_truth
    from edge.camera import SAMPLE_VIDEO

    truth = load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))
    frames = read_all_frames(SAMPLE_VIDEO)
    return truth, frames


def _first_frame_with(truth, label):
    return next(t for t in truth if (t.label == label).sum() >= 2)


@pytest.mark.parametrize("label,model", [(0, "yunet"), (0, "centerface"), (0, "yolo5face"), (1, "plate_yolov8n")])
def test_real_model_finds_labelled_objects(sample_truth_frames, label, model):
    from edge.config import DetectConfig
    from edge.detect.boxes import iou_matrix
    from edge.detect.factory import build_detectors

    truth, frames = sample_truth_frames
    base = DetectConfig()
    config = replace(base, faces=replace(base.faces, enabled=label == 0, models=[model] if label == 0 else ["yunet"]),
                     plates=replace(base.plates, enabled=label == 1), people=replace(base.people, enabled=False))
    (detector,) = build_detectors(config)
    record = _first_frame_with(truth, label)
    found = detector.detect(frames[int(record.key)])
    assert (found.label == label).all()
    gt = record.xyxy[record.label == label]
    best_overlap = iou_matrix(gt, found.xyxy).max(axis=1) if len(found) else np.zeros(len(gt))
    assert (best_overlap > 0.2).mean() >= 0.5, f"{model} matched {best_overlap.round(2).tolist()}"
