"""GuardedDetector with its models side by side: results merged as in turn, any failure fails the frame."""
from __future__ import annotations

import threading

import numpy as np

from edge.detect.guard import GuardedDetector
from edge.types import DetectionFailure, Detections, Label


class _Box:
    def __init__(self, name: str, x: float, barrier: threading.Barrier | None = None, error: bool = False) -> None:
        self.name, self._x, self._barrier, self._error = name, x, barrier, error

    def detect(self, image_bgr: np.ndarray) -> Detections:
        if self._barrier is not None:
            self._barrier.wait(timeout=2)  # passes only if the other model runs at the same time
        if self._error:
            raise RuntimeError("model crashed")
        return Detections([[self._x, 0, self._x + 10, 10]], [0.9], [Label.FACE])


def test_side_by_side_models_run_at_the_same_time_and_their_boxes_are_merged_in_order():
    barrier = threading.Barrier(2)
    guard = GuardedDetector([_Box("a", 0, barrier), _Box("b", 50, barrier)], timeout_s=5, side_by_side=True)
    try:
        found = guard.detect(np.zeros((20, 80, 3), np.uint8))
    finally:
        guard.close()
    assert isinstance(found, Detections)
    assert found.xyxy[:, 0].tolist() == [0, 50]


def test_a_side_by_side_model_that_raises_fails_the_frame():
    guard = GuardedDetector([_Box("a", 0), _Box("b", 50, error=True)], timeout_s=5, side_by_side=True)
    try:
        verdict = guard.detect(np.zeros((20, 80, 3), np.uint8))
    finally:
        guard.close()
    assert isinstance(verdict, DetectionFailure) and "model crashed" in verdict.reason
