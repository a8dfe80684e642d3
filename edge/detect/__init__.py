"""Detection: the `Detector` protocol, ONNX model loading and the face and plate decoders."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from edge.types import Detections


class Detector(Protocol):
    """Finds faces and/or plates in one BGR image; returns boxes in that image's pixels."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> Detections: ...
