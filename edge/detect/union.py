"""Several face models as one detector: each model's faces widened to heads, overlaps merged.

YuNet, YOLO5Face and CenterFace miss different faces (masked, half-turned, seen from above,
small); the union at recall-leaning thresholds finds more than any one of them. Boxes that
several models found for one face are merged into the box enclosing them, so a face is
counted once and hidden as widely as the widest model saw it.
"""
from __future__ import annotations

import numpy as np

from edge.detect import Detector
from edge.detect.heads import face_to_head, merge_overlapping
from edge.types import Detections, Label

# Two models' boxes for one face overlap far more than this; two neighbours in a crowd rarely do.
MERGE_IOU = 0.3


class FaceUnion:
    """Runs each face model on the frame and returns head boxes (label FACE)."""

    name = "faces"
    mirrored_look = True  # see edge.detect.mirror

    def __init__(self, models: list[Detector], head_width: float, head_height: float, head_raise: float) -> None:
        self._models = models
        self._head = (head_width, head_height, head_raise)

    @property
    def models(self) -> tuple[Detector, ...]:
        return tuple(self._models)

    def set_input_long_side(self, long_side: int) -> None:
        """Passed on to the models that take any input size (the heat governor lowers it on a hot board)."""
        for model in self._models:
            if hasattr(model, "set_input_long_side"):
                model.set_input_long_side(long_side)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        found = [model.detect(image_bgr) for model in self._models]
        xyxy = np.concatenate([d.xyxy for d in found]) if found else np.zeros((0, 4), np.float32)
        score = np.concatenate([d.score for d in found]) if found else np.zeros(0, np.float32)
        heads, score = merge_overlapping(face_to_head(xyxy, *self._head), score, MERGE_IOU)
        return Detections(heads, score, np.full(len(heads), Label.FACE))
