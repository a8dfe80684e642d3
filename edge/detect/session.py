"""onnxruntime session setup: execution providers and threads come from config.

A provider that this onnxruntime build lacks is skipped with one warning line, and
CPU is always kept last so a misconfigured accelerator degrades speed, not privacy.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.detect.boxes import GRID, Letterbox, letterbox_blob, to_blob
from edge.errors import ModelError

log = logging.getLogger(__name__)

_CPU = "CPUExecutionProvider"


def choose_providers(requested: list[str], available: list[str]) -> list[str]:
    """Requested providers that exist here, in order, with CPU appended as the last resort."""
    chosen = [p for p in requested if p in available]
    for missing in (p for p in requested if p not in available):
        log.warning("execution provider %s is not available in this onnxruntime build; skipping it", missing)
    if _CPU not in chosen:
        chosen.append(_CPU)
    return chosen


def create_session(model_path: Path, providers: list[str], intra_op_threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the vendored models trigger harmless graph warnings
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    # The memory pattern keeps one planned block per model for all its intermediate tensors; with five
    # models it held 75 MB more for no speed (measured on the default detectors at 720p: 375 -> 300 MB,
    # 115 -> 112 ms per frame). The arena stays on: without it the peak rose to 505 MB.
    options.enable_mem_pattern = False
    # Idle pool threads must not spin: with two models per frame, one pool spinning steals
    # the cores the other needs (measured: 137 ms sequential vs 87 ms summed alone on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = choose_providers(providers, ort.get_available_providers())
    try:
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=chosen)
    except (ort.capi.onnxruntime_pybind11_state.Fail,
            ort.capi.onnxruntime_pybind11_state.InvalidProtobuf,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph) as exc:
        raise ModelError(f"cannot load model {model_path}: {str(exc).splitlines()[0]}") from None
    log.info("loaded %s with providers %s", model_path.name, session.get_providers())
    return session


TRAINED_SIDE = 640  # the YOLO-family models were trained on 640 px letterboxes


class LetterboxModel:
    """What a detector on one letterboxed input holds: its session, input name and side, thresholds.

    A model exported for 640x640 sees a 640 px square; one whose height and width are free
    (`scripts/free_input_size.py`) sees the image shrunk to 640 px on its long side, padded only to a
    multiple of 32: a 16:9 frame as 640x384 instead of 640x640, the same pixels for 60 % of the work.
    """

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float) -> None:
        self._session = session
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        height, width = model_input.shape[2:4]
        self.any_size = not isinstance(height, int) and not isinstance(width, int)
        self._size = TRAINED_SIDE if self.any_size else int(height)
        self._output_names = [output.name for output in session.get_outputs()]
        self._score_threshold = score_threshold
        self._nms_iou = nms_iou

    @property
    def input_size(self) -> int:
        """The long side of the model's input (the side of a square one)."""
        return self._size

    def _blob(self, image_bgr: np.ndarray, laid_out: bool = False) -> tuple[np.ndarray, Letterbox]:
        """The model's input for `image_bgr` and the geometry that maps its boxes back. A `laid_out` image
        (a vehicle canvas: `input_size` wide, its height a multiple of `GRID`) goes to an any-size model as
        it is, where a square one gets its letterbox."""
        if laid_out and self.any_size:
            height, width = image_bgr.shape[:2]
            if width != self._size or height % GRID or height > self._size:
                raise ValueError(f"a laid-out input must be {self._size} wide and a multiple of {GRID} high, "
                                 f"not {width}x{height}")
            return to_blob(image_bgr), Letterbox(scale=1.0, pad_x=0.0, pad_y=0.0)
        return letterbox_blob(image_bgr, self._size, square=not self.any_size)
