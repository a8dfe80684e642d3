"""Several face models as one detector: each model's faces widened to heads, overlaps merged.

YuNet, YOLO5Face and CenterFace miss different faces (masked, half-turned, seen from above,
small); the union at recall-leaning thresholds finds more than any one of them. Boxes that
several models found for one face are merged into the box enclosing them, so a face is
counted once and hidden as widely as the widest model saw it. A photo also gets a step back
(`FaceUnion.detect_still`): faces too close to be found are looked for in the photo shrunk.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.detect import Detector
from edge.detect.boxes import clip_boxes
from edge.detect.heads import MERGE_IOU, face_to_head, merge_overlapping
from edge.detect.mirror import merge_looks
from edge.types import Detections, Label

# A photo taken close (a webcam, a selfie, a passenger facing the camera) holds faces larger than the models
# find well, masked or turned ones above all. The step back shrinks the photo by this factor onto a grey
# canvas of its size. Measured on the dev face photos (300, 614 heads; the 640 px webcam frames hold heads
# of 200-480 px): heads hidden 92.7 -> 94.8 % with the mirrored look taking the step back too (one way:
# 0.5 94.3, 0.35 94.1, 0.65 94.0 %), for 0.033 more of the textured area outside the heads and 0.027 more on
# the plate photos (the face models fire on cars, seen smaller). Keeping only large boxes from the step back
# saved a tenth of that area and lost most of the heads it found.
STEP_BACK = 0.5
PAD_VALUE = 114


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

    def detect_still(self, image_bgr: np.ndarray) -> Detections:
        """A photo: the heads `detect` finds, and those it finds on the photo shrunk by STEP_BACK and centred on
        a grey canvas of the photo's size, merged into enclosing boxes (`merge_looks`). A video's keyframe has
        no time for it, and a dashcam's faces are seldom too close."""
        found = self.detect(image_bgr)
        height, width = image_bgr.shape[:2]
        small_w, small_h = max(1, round(width * STEP_BACK)), max(1, round(height * STEP_BACK))
        canvas = np.full_like(image_bgr, PAD_VALUE)
        left, top = (width - small_w) // 2, (height - small_h) // 2
        canvas[top:top + small_h, left:left + small_w] = cv2.resize(image_bgr, (small_w, small_h),
                                                                    interpolation=cv2.INTER_AREA)
        back = self.detect(canvas)
        # Each axis by its own rounded factor: the nominal one would shrink a box by up to a pixel.
        offset = np.array([left, top, left, top], np.float32)
        factor = np.array([small_w / width, small_h / height] * 2, np.float32)
        xyxy = clip_boxes((back.xyxy - offset) / factor, width, height)
        return merge_looks(found, Detections(xyxy, back.score, back.label))
