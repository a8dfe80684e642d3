"""YOLO5Face (yolov5n-0.5) face detector: letterbox preprocessing and a numpy decoder of its raw heads.

The vendored file is the authors' own export: input `data` [1,3,640,640] RGB/255 on a
letterbox padded with 114, and per stride 8/16/32 a raw head [1, 3 anchors, H, W, 16] =
tx, ty, tw, th, objectness, 10 landmark values, face class. It finds faces that YuNet
misses (masked, half-turned, seen from above), so dashcam runs it beside YuNet.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from edge.config import DetectConfig
from edge.detect.boxes import clip_boxes, nms
from edge.detect.session import LetterboxModel
from edge.types import Detections, Label

STRIDES = (8, 16, 32)
# Anchor sizes (w, h) in input pixels per stride, from the model's training config.
ANCHORS = {
    8: ((4, 5), (8, 10), (13, 16)),
    16: ((23, 29), (43, 55), (73, 105)),
    32: ((146, 217), (231, 300), (335, 433)),
}


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -50, 50)))


def decode_yolo5face(outputs: dict[str, np.ndarray], score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (xyxy in letterbox pixels) and scores (objectness x face) above threshold, before NMS."""
    all_boxes, all_scores = [], []
    for stride in STRIDES:
        head = outputs[f"stride_{stride}"]
        if head.ndim != 5 or head.shape[1] != 3 or head.shape[4] != 16:
            raise ValueError(f"YOLO5Face stride {stride}: expected [1,3,H,W,16], got {list(head.shape)}")
        head = head[0]  # (3, H, W, 16)
        score = _sigmoid(head[..., 4]) * _sigmoid(head[..., 15])
        anchor_i, grid_y, grid_x = np.nonzero(score >= score_threshold)
        if anchor_i.size == 0:
            continue
        raw = _sigmoid(head[anchor_i, grid_y, grid_x, :4])
        anchors = np.asarray(ANCHORS[stride], np.float32)[anchor_i]
        cx = (raw[:, 0] * 2 - 0.5 + grid_x) * stride
        cy = (raw[:, 1] * 2 - 0.5 + grid_y) * stride
        w = (raw[:, 2] * 2) ** 2 * anchors[:, 0]
        h = (raw[:, 3] * 2) ** 2 * anchors[:, 1]
        all_boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        all_scores.append(score[anchor_i, grid_y, grid_x])
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32)


class Yolo5FaceDetector(LetterboxModel):
    """Faces on one 640 letterbox of the whole frame."""

    name = "yolo5face"

    @classmethod
    def from_config(cls, session: ort.InferenceSession, config: DetectConfig) -> Yolo5FaceDetector:
        return cls(session, config.faces.score_threshold, config.faces.nms_iou)

    def detect(self, image_bgr: np.ndarray) -> Detections:
        height, width = image_bgr.shape[:2]
        blob, geometry = self._blob(image_bgr)
        raw = self._session.run(self._output_names, {self._input_name: blob})
        xyxy, score = decode_yolo5face(dict(zip(self._output_names, raw)), self._score_threshold)
        keep = nms(xyxy, score, self._nms_iou)
        xyxy = clip_boxes(geometry.to_source(xyxy[keep]), width, height)
        return Detections(xyxy, score[keep], np.full(len(keep), Label.FACE))
