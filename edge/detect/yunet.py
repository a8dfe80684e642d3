"""YuNet face detector (libfacedetection): preprocessing and a numpy decoder.

The model takes BGR 0-255 NCHW at any size that is a multiple of 32 and outputs, per
stride 8/16/32, class and objectness scores and box offsets on the anchor grid.
"""
from __future__ import annotations

import numpy as np

from edge.detect.face import StrideFaceDetector

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


class YuNetDetector(StrideFaceDetector):
    name = "yunet"

    def _infer(self, model_input_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blob = model_input_bgr.transpose(2, 0, 1)[None].astype(np.float32)
        raw = self._session.run(self._output_names, {self._input_name: blob})
        outputs = dict(zip(self._output_names, raw))
        height, width = model_input_bgr.shape[:2]
        return decode_yunet(outputs, height, width, self._score_threshold)
