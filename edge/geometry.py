"""Box geometry that needs no model: the one rule by which boxes grow.

Used by the detectors (face to head), the tracker (carried boxes grow with their distance
from a detection) and the redactor (mask scale), so it lives below all three.
"""
from __future__ import annotations

import numpy as np


def scale_boxes(xyxy: np.ndarray, scale_x: float | np.ndarray, scale_y: float | np.ndarray | None = None,
                raise_share: float = 0.0) -> np.ndarray:
    """(N,4) boxes scaled about their centres: by `scale_x` across and `scale_y` (default: the same) down,
    each one factor or one per box; the centre first raised by `raise_share` of the box's height.

    The one box-growth rule: the tracker's carried boxes, the redactor's mask scale and the face-to-head
    widening all use it. Arithmetic follows numpy's promotion, as each of the three did before they
    shared it: a Python float factor computes in float64, float32 boxes with float32 factors stay float32.
    """
    boxes = np.asarray(xyxy)
    if not np.issubdtype(boxes.dtype, np.floating):
        boxes = boxes.astype(np.float64)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    if raise_share:
        centre[:, 1] -= raise_share * size[:, 1]
    across = np.reshape(scale_x, (-1, 1))
    down = across if scale_y is None else np.reshape(scale_y, (-1, 1))
    half = size * np.concatenate(np.broadcast_arrays(across, down), axis=1) / 2
    return np.concatenate([centre - half, centre + half], axis=1)
