"""Builds the configured detectors from verified model files (called from the CLI only)."""
from __future__ import annotations

from pathlib import Path

from edge.config import DetectConfig
from edge.detect import Detector
from edge.detect.centerface import CenterFaceDetector
from edge.detect.guard import GuardedDetector
from edge.detect.models import MODELS, resolve_model
from edge.detect.session import create_session
from edge.detect.yolo import PlateYoloDetector
from edge.detect.yunet import YuNetDetector


def build_detectors(config: DetectConfig) -> list[Detector]:
    """One detector per enabled class; models are checked against their sha256 first."""
    models_dir = Path(config.models_dir) if config.models_dir else None
    detectors: list[Detector] = []

    def session_for(key: str):
        path = resolve_model(key, models_dir)
        return create_session(path, config.providers, config.intra_op_threads)

    faces = config.faces
    if faces.enabled:
        face_class = YuNetDetector if faces.model == "yunet" else CenterFaceDetector
        detectors.append(face_class(session_for(faces.model), faces.score_threshold, faces.nms_iou,
                                    faces.input_long_side))
    plates = config.plates
    if plates.enabled:
        detectors.append(PlateYoloDetector(session_for(plates.model), plates.score_threshold, plates.nms_iou,
                                           plates.tiles, plates.road_top, plates.road_bottom, plates.tile_every))
    return detectors


def guarded(detectors: list[Detector], config: DetectConfig, live: bool) -> GuardedDetector:
    """The detectors under their deadline: a live source's, or for files the long one that only catches a hang.

    A file has no frame arriving behind the one being detected, so a slow detection
    (a busy machine, a large frame) costs time, not privacy; a live deadline there
    blurred a third of a 1080p file whole on a loaded machine.
    """
    timeout_ms = config.timeout_ms if live else config.offline_timeout_ms
    return GuardedDetector(detectors, timeout_ms / 1000)


def model_ids(config: DetectConfig) -> dict[str, str]:
    """`name -> sha256` of the models a config uses, for sidecars and reports."""
    keys = [config.faces.model] if config.faces.enabled else []
    keys += [config.plates.model] if config.plates.enabled else []
    return {MODELS[k].filename: MODELS[k].sha256 for k in keys}
