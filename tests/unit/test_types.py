import numpy as np
import pytest

from edge.types import Detections, Label


def test_empty_detections_are_arrays_not_none():
    empty = Detections.empty()
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4) and empty.xyxy.dtype == np.float32


def test_detections_validate_lengths_values_and_labels():
    with pytest.raises(ValueError, match="differ in length"):
        Detections(np.zeros((2, 4)), np.zeros(1), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        Detections(np.array([[0, 0, np.nan, 1]]), np.ones(1), np.zeros(1))
    with pytest.raises(ValueError, match="x2 < x1"):
        Detections(np.array([[5, 0, 1, 1]]), np.ones(1), np.zeros(1))
    with pytest.raises(ValueError, match="unknown labels"):
        Detections(np.array([[0, 0, 1, 1]]), np.ones(1), np.array([7]))


def test_mask_indexing_merge_and_count():
    a = Detections(np.array([[0, 0, 1, 1], [2, 2, 3, 3]]), np.array([0.9, 0.2]), np.array([Label.FACE, Label.PLATE]))
    strong = a[a.score > 0.5]
    assert len(strong) == 1 and strong.label.tolist() == [Label.FACE]
    merged = Detections.merge([a, strong, Detections.empty()])
    assert len(merged) == 3 and merged.count(Label.FACE) == 2 and merged.count(Label.PLATE) == 1

