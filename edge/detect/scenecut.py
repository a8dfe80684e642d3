"""Hard scene cuts, found cheaply so that no box is carried or interpolated across one.

Each frame is reduced to a small grey thumbnail (area-averaged, so sensor noise and
compression blocks average out), standardized to zero mean and unit spread (so an
exposure change or a fade does not look like a cut), and compared with the previous
frame's: the mean absolute difference of the standardized pixels is about 0 for the same
view and about 1.1 for two unrelated views (for independent unit-variance pixels it is
2/sqrt(pi)). A frame above the threshold starts a new scene.

A flat frame (black, or a lens cap) has no spread to standardize; it is compared by its
mean brightness instead, and a change from flat to detailed or back is always a cut.
A false cut only costs two extra detections; a missed one could slide a mask off a face.
"""
from __future__ import annotations

import cv2
import numpy as np

THUMB_SIZE = (64, 36)  # width, height: 16:9, 2304 pixels
_MAX_SHIFT = 2  # thumbnail pixels searched each way for the best alignment
_FLAT_STD = 4.0  # grey levels: below this spread the frame has no structure to compare
_FLAT_STEP = 40.0  # grey levels of mean brightness between two flat frames that count as a cut


def thumbnail(image_bgr: np.ndarray) -> np.ndarray:
    """The small float32 grey thumbnail the cut measure compares."""
    grey = cv2.cvtColor(cv2.resize(image_bgr, THUMB_SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return grey.astype(np.float32)


def cut_score(previous: np.ndarray, current: np.ndarray) -> float:
    """How different two thumbnails are: about 0 for the same view, about 1.1 for unrelated views.

    The best of small shifts (up to `_MAX_SHIFT` thumbnail pixels, 3 % of the width) is taken,
    so a fast pan or a bump of the camera does not look like a cut.
    """
    spread_prev, spread_cur = float(previous.std()), float(current.std())
    if spread_prev < _FLAT_STD and spread_cur < _FLAT_STD:
        return float("inf") if abs(float(previous.mean()) - float(current.mean())) > _FLAT_STEP else 0.0
    if spread_prev < _FLAT_STD or spread_cur < _FLAT_STD:
        return float("inf")
    a = (previous - previous.mean()) / spread_prev
    b = (current - current.mean()) / spread_cur
    m = _MAX_SHIFT
    height, width = a.shape
    inner = b[m:height - m, m:width - m]
    return min(float(np.abs(a[m + dy:height - m + dy, m + dx:width - m + dx] - inner).mean())
               for dy in range(-m, m + 1) for dx in range(-m, m + 1))


class SceneCutDetector:
    """Feed the thumbnails of the frames that are kept, in order; says whether each one starts a new scene.

    Frames that are dropped must not be fed: a cut on a dropped frame must still show
    between the kept frames on either side of it.
    """

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold
        self._previous: np.ndarray | None = None
        self.last_score = 0.0

    def is_cut(self, thumb: np.ndarray) -> bool:
        previous, self._previous = self._previous, thumb
        if previous is None:
            return False  # the first frame starts the run; it is a keyframe anyway
        self.last_score = cut_score(previous, thumb)
        return self.last_score > self._threshold
