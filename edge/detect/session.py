"""onnxruntime session setup: execution providers and threads come from config.

A provider that this onnxruntime build lacks is skipped with one warning line, and
CPU is always kept last so a misconfigured accelerator degrades speed, not privacy.
"""
from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

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


class SquareInputModel:
    """What a detector on one square letterboxed input holds: its session, input name and side, thresholds."""

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float) -> None:
        self._session = session
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        self._size = int(model_input.shape[2])
        self._output_names = [output.name for output in session.get_outputs()]
        self._score_threshold = score_threshold
        self._nms_iou = nms_iou

    @property
    def input_size(self) -> int:
        """The side of the model's square input."""
        return self._size
