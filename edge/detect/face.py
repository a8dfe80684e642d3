"""What the face detectors share: shrink and pad the frame, run the model, NMS, map boxes back."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from edge.config import DetectConfig
from edge.detect.boxes import GRID, clip_boxes, nms, resize_for_stride
from edge.types import Detections, Label


class StrideFaceDetector:
    """Base for fully convolutional face models that take any size that is a multiple of 32.

    Subclasses implement `_infer(model_input_bgr) -> (xyxy, score)` in model-input pixels.
    """

    name = "face"

    @classmethod
    def from_config(cls, session: ort.InferenceSession, config: DetectConfig) -> StrideFaceDetector:
        faces = config.faces
        return cls(session, faces.score_threshold, faces.nms_iou, faces.input_long_side)

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float,
                 input_long_side: int) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name
        self._output_names = [output.name for output in session.get_outputs()]
        self._score_threshold = score_threshold
        self._nms_iou = nms_iou
        self._input_long_side = input_long_side

    def set_input_long_side(self, long_side: int) -> None:
        """Detect at another resolution from the next frame on (the heat governor lowers it on a hot board)."""
        self._input_long_side = long_side

    def detect(self, image_bgr: np.ndarray) -> Detections:
        height, width = image_bgr.shape[:2]
        model_input, scale = resize_for_stride(image_bgr, self._input_long_side, stride=GRID)
        xyxy, score = self._infer(model_input)
        keep = nms(xyxy, score, self._nms_iou)
        xyxy = clip_boxes(xyxy[keep] / scale, width, height)
        return Detections(xyxy, score[keep], np.full(len(keep), Label.FACE))

    def _infer(self, model_input_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError
