"""CenterFace face detector: preprocessing and a numpy decoder of its 1/4-scale heatmap.

The model takes RGB 0-255 NCHW at multiples of 32 (the vendored file has symbolic
input dims; see scripts/convert_centerface.py) and outputs a face-centre heatmap,
log box sizes and centre offsets at a quarter of the input resolution.
"""
from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from edge.detect.boxes import clip_boxes, nms, resize_for_stride
from edge.types import Detections, Label

OUTPUT_STRIDE = 4


def decode_centerface(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                      score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (xyxy in input pixels) and scores above threshold, before NMS.

    heatmap (1,1,H,W); scale and offset (1,2,H,W) with channel 0 = y/height, 1 = x/width.
    """
    heat = heatmap[0, 0]
    ys, xs = np.nonzero(heat >= score_threshold)
    if ys.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    box_h = np.exp(np.clip(scale[0, 0, ys, xs], -10, 10)) * OUTPUT_STRIDE
    box_w = np.exp(np.clip(scale[0, 1, ys, xs], -10, 10)) * OUTPUT_STRIDE
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * OUTPUT_STRIDE
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * OUTPUT_STRIDE
    xyxy = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
    return xyxy.astype(np.float32), heat[ys, xs].astype(np.float32)


class CenterFaceDetector:
    name = "centerface"

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float,
                 input_long_side: int) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name
        self._score_threshold = score_threshold
        self._nms_iou = nms_iou
        self._input_long_side = input_long_side

    def detect(self, image_bgr: np.ndarray) -> Detections:
        height, width = image_bgr.shape[:2]
        model_input, factor = resize_for_stride(image_bgr, self._input_long_side, stride=32)
        rgb = cv2.cvtColor(model_input, cv2.COLOR_BGR2RGB)
        blob = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        heatmap, scale, offset, _landmarks = self._session.run(None, {self._input_name: blob})
        xyxy, score = decode_centerface(heatmap, scale, offset, self._score_threshold)
        keep = nms(xyxy, score, self._nms_iou)
        xyxy = clip_boxes(xyxy[keep] / factor, width, height)
        return Detections(xyxy, score[keep], np.full(len(keep), Label.FACE))
