"""The camera's own motion between two keyframes, so carried boxes can follow it.

A dashcam moves: as the car approaches, everything beside the road grows and slides
away from the centre, often faster than a carried box grows. Between two keyframes the
image motion is estimated as one similarity transform (scale, rotation, shift): ORB
corners on small grey copies, matched, fitted with RANSAC (`cv2.estimateAffinePartial2D`).
The tracker uses it only to *add* boxes (each keyframe's boxes carried along the motion),
never to move or drop one, so a wrong estimate costs blur, not privacy. When too few
corners agree, there is no estimate and only the other rules apply.
"""
from __future__ import annotations

import cv2
import numpy as np

WORK_WIDTH = 320  # pixels: corners on a small copy are cheap and stable enough for a global fit
_MIN_INLIERS = 12
_RANSAC_PX = 3.0  # on the small copy


def small_grey(image_bgr: np.ndarray) -> np.ndarray:
    height, width = image_bgr.shape[:2]
    size = (WORK_WIDTH, max(1, round(height * WORK_WIDTH / width)))
    return cv2.cvtColor(cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


class MotionEstimator:
    """`between(a, b)`: the 2x3 transform taking full-resolution pixels of keyframe a to keyframe b."""

    def __init__(self) -> None:
        self._orb = cv2.ORB_create(nfeatures=400, fastThreshold=10)  # type: ignore[attr-defined]  # in OpenCV, not its stubs
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)

    def between(self, grey_a: np.ndarray, grey_b: np.ndarray, full_width: int) -> np.ndarray | None:
        points_a, points_b = self._matches(grey_a, grey_b)
        if len(points_a) < _MIN_INLIERS:
            return None
        matrix, inliers = cv2.estimateAffinePartial2D(points_a, points_b, method=cv2.RANSAC,
                                                      ransacReprojThreshold=_RANSAC_PX)
        if matrix is None or inliers is None or int(inliers.sum()) < _MIN_INLIERS:
            return None
        scale = full_width / grey_a.shape[1]
        matrix = matrix.astype(np.float64)
        matrix[:, 2] *= scale  # the shift was measured on the small copy
        return matrix

    def _matches(self, grey_a: np.ndarray, grey_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys_a, desc_a = self._orb.detectAndCompute(grey_a, None)
        keys_b, desc_b = self._orb.detectAndCompute(grey_b, None)
        if desc_a is None or desc_b is None:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        matches = self._matcher.match(desc_a, desc_b)
        points_a = np.array([keys_a[m.queryIdx].pt for m in matches], np.float32).reshape(-1, 2)
        points_b = np.array([keys_b[m.trainIdx].pt for m in matches], np.float32).reshape(-1, 2)
        return points_a, points_b


def partial(matrix: np.ndarray, weight: float) -> np.ndarray:
    """The share `weight` (0..1) of a similarity motion: scale and angle geometrically, shift linearly."""
    a, b = matrix[0, 0], matrix[1, 0]
    scale, angle = float(np.hypot(a, b)), float(np.arctan2(b, a))
    s, t = scale ** weight, angle * weight
    linear = np.array([[s * np.cos(t), -s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]])
    # The fixed point of the whole motion stays fixed along the way (a zoom about one centre).
    full_linear = matrix[:, :2]
    try:
        centre = np.linalg.solve(np.eye(2) - full_linear, matrix[:, 2])
        shift = centre - linear @ centre
    except np.linalg.LinAlgError:  # a pure shift: no fixed point
        shift = matrix[:, 2] * weight
    if not np.isfinite(shift).all() or abs(scale - 1) < 1e-3:
        shift = matrix[:, 2] * weight
    return np.hstack([linear, shift[:, None]])


def inverse(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The transform applying `first`, then `then`."""
    return (np.vstack([then, [0, 0, 1]]) @ np.vstack([first, [0, 0, 1]]))[:2]


def move_box(xyxy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The axis-aligned box around a box's four corners after the transform."""
    x1, y1, x2, y2 = xyxy
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], np.float64) @ matrix.T
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])
