"""CenterFace face detector: preprocessing and a numpy decoder of its 1/4-scale heatmap.

The model takes RGB 0-255 NCHW at multiples of 32 (the vendored file has symbolic
input dims; see scripts/convert_centerface.py) and outputs a face-centre heatmap,
log box sizes and centre offsets at a quarter of the input resolution.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.detect.face import StrideFaceDetector

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


class CenterFaceDetector(StrideFaceDetector):
    name = "centerface"

    def _infer(self, model_input_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = cv2.cvtColor(model_input_bgr, cv2.COLOR_BGR2RGB)
        blob = rgb.transpose(2, 0, 1)[None].astype(np.float32)
        heatmap, scale, offset, _landmarks = self._session.run(None, {self._input_name: blob})
        return decode_centerface(heatmap, scale, offset, self._score_threshold)
