"""YOLOv8 licence-plate detector: letterbox preprocessing and a numpy decoder of [1, 4+C, N].

The vendored export takes RGB/255 on a 640x640 letterbox padded with 114 and outputs
centre-x, centre-y, width, height and one class score per anchor (no objectness).
"""
from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from edge.detect.boxes import clip_boxes, cxcywh_to_xyxy, letterbox, nms
from edge.types import Detections, Label


def decode_yolov8(output: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (xyxy in letterbox pixels) and best-class scores above threshold, before NMS."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] < 5:
        raise ValueError(f"YOLOv8 output must be [1, 4+classes, anchors], got {list(output.shape)}")
    rows = output[0].T  # (anchors, 4 + classes)
    scores = rows[:, 4:].max(axis=1)
    keep = scores >= score_threshold
    return cxcywh_to_xyxy(rows[keep, :4]).astype(np.float32), scores[keep].astype(np.float32)


class PlateYoloDetector:
    name = "plate_yolov8n"

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float) -> None:
        self._session = session
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        self._size = int(model_input.shape[2])
        self._score_threshold = score_threshold
        self._nms_iou = nms_iou

    def detect(self, image_bgr: np.ndarray) -> Detections:
        height, width = image_bgr.shape[:2]
        square, geometry = letterbox(image_bgr, self._size)
        rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB)
        blob = (rgb.transpose(2, 0, 1)[None].astype(np.float32)) * np.float32(1 / 255)
        (output,) = self._session.run(None, {self._input_name: blob})
        xyxy, score = decode_yolov8(output, self._score_threshold)
        keep = nms(xyxy, score, self._nms_iou)
        xyxy = clip_boxes(geometry.to_source(xyxy[keep]), width, height)
        return Detections(xyxy, score[keep], np.full(len(keep), Label.PLATE))
