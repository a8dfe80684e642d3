"""YOLOv5n (COCO-80) as a second line: people and vehicles, decoded from its [1, N, 85] output.

The vendored export takes RGB/255 on a 640 letterbox padded with 114 and outputs, per anchor,
centre x, centre y, width, height (letterbox pixels), objectness and 80 class probabilities,
sigmoid already applied; there is no NMS in the graph. dashcam keeps persons (whose heads it
hides; see `edge.detect.second_line`) and motor vehicles (whose plates it searches).
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from edge.config import DetectConfig
from edge.detect.boxes import clip_boxes, cxcywh_to_xyxy, nms
from edge.detect.session import LetterboxModel

PERSON = 0
VEHICLES = (2, 3, 5, 7)  # car, motorcycle, bus, truck


def decode_yolov5(output: np.ndarray, classes: tuple[int, ...],
                  score_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (xyxy, letterbox pixels), scores (objectness x class) and class ids of the wanted classes."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[2] < 6:
        raise ValueError(f"YOLOv5 output must be [1, anchors, 5+classes], got {list(output.shape)}")
    rows = output[0]
    candidates = rows[rows[:, 4] >= score_threshold]  # objectness bounds the score from above
    wanted = np.asarray(classes, np.int64)
    scores = candidates[:, 5 + wanted] * candidates[:, 4:5]
    best = scores.argmax(axis=1)
    score = scores[np.arange(len(best)), best]
    keep = score >= score_threshold
    xyxy = cxcywh_to_xyxy(candidates[keep, :4]).astype(np.float32)
    return xyxy, score[keep].astype(np.float32), wanted[best[keep]]


class CocoDetector(LetterboxModel):
    """Persons and vehicles in one 640 letterbox of the whole frame, NMS per class."""

    name = "yolov5n_coco"

    @classmethod
    def from_config(cls, session: ort.InferenceSession, config: DetectConfig) -> CocoDetector:
        return cls(session, config.people.score_threshold, config.people.nms_iou)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(xyxy, score, class_id)` in the image's pixels."""
        height, width = image_bgr.shape[:2]
        blob, geometry = self._blob(image_bgr)
        (output,) = self._session.run(None, {self._input_name: blob})
        xyxy, score, class_id = decode_yolov5(output, (PERSON, *VEHICLES), self._score_threshold)
        # Offsetting boxes by class keeps NMS from merging a rider into his motorcycle.
        offset = (class_id[:, None] * 4096).astype(np.float32)
        keep = nms(xyxy + offset, score, self._nms_iou)
        xyxy = clip_boxes(geometry.to_source(xyxy[keep]), width, height)
        return xyxy, score[keep], class_id[keep]
