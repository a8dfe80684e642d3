"""YuNet face detector (libfacedetection): preprocessing and a numpy decoder.

The model takes BGR 0-255 NCHW at any size that is a multiple of 32 and outputs, per
stride 8/16/32, class and objectness scores and box offsets on the anchor grid.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from edge.detect.boxes import clip_boxes, nms, resize_for_stride
from edge.types import Detections, Label

STRIDES = (8, 16, 32)


def decode_yunet(outputs: dict[str, np.ndarray], input_h: int, input_w: int,
                 score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (xyxy in input pixels) and scores above threshold, before NMS."""
    all_boxes, all_scores = [], []
    for stride in STRIDES:
        rows, cols = input_h // stride, input_w // stride
        cls = outputs[f"cls_{stride}"].reshape(-1)
        obj = outputs[f"obj_{stride}"].reshape(-1)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)
        if len(cls) != rows * cols:
            raise ValueError(f"YuNet stride {stride}: {len(cls)} anchors for a {rows}x{cols} grid")
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.flatnonzero(score >= score_threshold)
        if keep.size == 0:
            continue
        grid_y, grid_x = np.divmod(keep, cols)
        offsets = bbox[keep]
        cx = (grid_x + offsets[:, 0]) * stride
        cy = (grid_y + offsets[:, 1]) * stride
        w = np.exp(np.clip(offsets[:, 2], -10, 10)) * stride
        h = np.exp(np.clip(offsets[:, 3], -10, 10)) * stride
        all_boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        all_scores.append(score[keep])
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32)


class YuNetDetector:
    name = "yunet"

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float,
                 input_long_side: int) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name
        self._output_names = [o.name for o in session.get_outputs()]
        self._score_threshold = score_threshold
        self._nms_iou = nms_iou
        self._input_long_side = input_long_side

    def detect(self, image_bgr: np.ndarray) -> Detections:
        height, width = image_bgr.shape[:2]
        model_input, scale = resize_for_stride(image_bgr, self._input_long_side, stride=32)
        blob = model_input.transpose(2, 0, 1)[None].astype(np.float32)
        raw = self._session.run(self._output_names, {self._input_name: blob})
        outputs = dict(zip(self._output_names, raw))
        xyxy, score = decode_yunet(outputs, *model_input.shape[:2], self._score_threshold)
        keep = nms(xyxy, score, self._nms_iou)
        xyxy = clip_boxes(xyxy[keep] / scale, width, height)
        return Detections(xyxy, score[keep], np.full(len(keep), Label.FACE))
