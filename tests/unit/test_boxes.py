import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from edge.detect.boxes import Letterbox, clip_boxes, iou_matrix, letterbox, nms, resize_for_stride
from edge.geometry import scale_boxes


def test_nms_keeps_best_of_overlapping_and_all_disjoint():
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    score = np.array([0.6, 0.9, 0.5], np.float32)
    assert nms(xyxy, score, 0.5).tolist() == [1, 2]


def test_nms_threshold_is_respected():
    xyxy = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)  # IoU = 1/3
    score = np.array([0.9, 0.8], np.float32)
    assert nms(xyxy, score, 0.3).tolist() == [0]
    assert nms(xyxy, score, 0.4).tolist() == [0, 1]


def test_nms_empty():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).size == 0


def test_iou_matrix_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30]], np.float32)
    assert iou_matrix(a, b)[0] == pytest.approx([1.0, 25 / 175, 0.0])


def test_letterbox_scales_pads_and_maps_back():
    image = np.zeros((360, 640, 3), np.uint8)
    square, geometry = letterbox(image, 640)
    assert square.shape == (640, 640, 3)
    assert geometry.scale == pytest.approx(1.0)
    assert (geometry.pad_x, geometry.pad_y) == (0.0, 140.0)
    assert square[0, 0, 0] == 114 and square[140, 0, 0] == 0
    box_in_square = np.array([[100, 240, 200, 290]], np.float32)
    assert geometry.to_source(box_in_square).tolist() == [[100, 100, 200, 150]]


def test_letterbox_downscale_round_trip():
    image = np.zeros((720, 1280, 3), np.uint8)
    _, geometry = letterbox(image, 640)
    assert geometry.scale == pytest.approx(0.5)
    source_box = np.array([[400, 300, 520, 340]], np.float32)
    in_square = source_box * geometry.scale + np.array([geometry.pad_x, geometry.pad_y] * 2, np.float32)
    np.testing.assert_allclose(geometry.to_source(in_square), source_box, atol=1e-3)


@pytest.mark.parametrize("height, width, expected", [(720, 1280, (384, 640)), (1080, 1920, (384, 640)),
                                                      (768, 1024, (512, 640)), (1000, 600, (640, 384)),
                                                      (640, 640, (640, 640))])
def test_letterbox_for_any_size_models_keeps_the_square_s_place_on_the_grid_and_maps_back(height, width, expected):
    image = np.full((height, width, 3), 7, np.uint8)
    boxed, geometry = letterbox(image, 640, square=False)
    square, square_geometry = letterbox(image, 640)
    assert boxed.shape[:2] == expected
    scale = 640 / max(height, width)
    content_h, content_w = round(height * scale), round(width * scale)
    assert (boxed == 7).all(axis=2).sum() == content_h * content_w  # all of the picture, no more
    # Each pixel sits on the same cell of the model's 32 px grid as in the square letterbox.
    assert geometry.pad_y == square_geometry.pad_y % 32 and geometry.pad_x == square_geometry.pad_x % 32
    source_box = np.array([[100, 50, 300, 200]], np.float32)
    in_model = source_box * geometry.scale + np.array([geometry.pad_x, geometry.pad_y] * 2, np.float32)
    np.testing.assert_allclose(geometry.to_source(in_model), source_box, atol=1e-3)


def test_letterbox_dataclass_identity():
    assert Letterbox(1.0, 0, 0).to_source(np.array([[1, 2, 3, 4]])).tolist() == [[1, 2, 3, 4]]


def test_resize_for_stride_pads_to_multiple_and_reports_scale():
    padded, scale = resize_for_stride(np.zeros((720, 1280, 3), np.uint8), 640, 32)
    assert scale == pytest.approx(0.5)
    assert padded.shape == (384, 640, 3)
    padded, scale = resize_for_stride(np.zeros((100, 90, 3), np.uint8), 640, 32)
    assert scale == 1.0 and padded.shape == (128, 96, 3)


def test_clip_boxes():
    clipped = clip_boxes(np.array([[-5, -5, 50, 500]], np.float32), 40, 30)
    assert clipped.tolist() == [[0, 0, 40, 30]]


def reference_nms(xyxy: np.ndarray, score: np.ndarray, iou_threshold: float) -> np.ndarray:
    """The plain numpy greedy NMS production used before OpenCV's: the oracle for `nms`."""
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = xyxy.T.astype(np.float64)
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-score, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]))
        inter_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]))
        inter = inter_w * inter_h
        union = areas[best] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


BOX = st.tuples(st.integers(0, 600), st.integers(0, 600), st.integers(1, 200), st.integers(1, 200))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(BOX, st.integers(1, 1000)), max_size=40), st.sampled_from([0.2, 0.3, 0.4, 0.5, 0.7]))
def test_opencv_nms_keeps_the_same_boxes_as_the_numpy_reference(boxes, iou_threshold):
    xyxy = np.array([[x, y, x + w, y + h] for (x, y, w, h), _ in boxes], dtype=np.float32).reshape(-1, 4)
    score = np.array([s / 1000 for _, s in boxes], dtype=np.float32)
    assert nms(xyxy, score, iou_threshold).tolist() == reference_nms(xyxy, score, iou_threshold).tolist()


def test_scale_boxes_one_factor_per_box_per_axis_and_raised():
    boxes = np.array([[10, 10, 20, 30], [0, 0, 4, 4]], np.float32)
    assert scale_boxes(boxes, 2.0).tolist() == [[5, 0, 25, 40], [-2, -2, 6, 6]]
    assert scale_boxes(boxes, np.array([1.0, 3.0])).tolist() == [[10, 10, 20, 30], [-4, -4, 8, 8]]
    assert scale_boxes(boxes[:1], 1.0, 0.5, raise_share=0.25).tolist() == [[10, 10, 20, 20]]
    assert scale_boxes(boxes, np.float32(2.0)).dtype == np.float32  # float32 boxes and factors stay float32
