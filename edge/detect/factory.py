"""Builds the configured detectors from verified model files (called from the CLI only)."""
from __future__ import annotations

from pathlib import Path

from edge.config import DetectConfig
from edge.detect import Detector
from edge.detect.centerface import CenterFaceDetector
from edge.detect.coco import CocoDetector
from edge.detect.guard import GuardedDetector
from edge.detect.models import MODELS, resolve_model
from edge.detect.second_line import SecondLine
from edge.detect.session import create_session
from edge.detect.union import FaceUnion
from edge.detect.yolo import PlateYoloDetector
from edge.detect.yolo5face import Yolo5FaceDetector
from edge.detect.yunet import YuNetDetector


def model_keys(config: DetectConfig) -> list[str]:
    """The model files a config uses, each once."""
    keys = list(config.faces.models) if config.faces.enabled else []
    keys += [config.plates.model] if config.plates.enabled else []
    keys += [config.people.model] if config.people.enabled else []
    return keys


def build_detectors(config: DetectConfig, live: bool = False) -> list[Detector]:
    """The face union, the plate detector and the second line, as enabled; models are checked against their
    sha256 first. A `live` source runs the second line on every `people.live_every`-th keyframe only: a
    camera cannot wait, and on 2 cores the full set on every keyframe dropped frames."""
    models_dir = Path(config.models_dir) if config.models_dir else None

    def session_for(key: str):
        path = resolve_model(key, models_dir)
        return create_session(path, config.providers, config.intra_op_threads)

    detectors: list[Detector] = []
    faces = config.faces
    if faces.enabled:
        detectors.append(FaceUnion([_face_model(key, session_for(key), config) for key in faces.models],
                                   faces.head_width, faces.head_height, faces.head_raise))
    plates = config.plates
    plate_detector = None
    if plates.enabled:
        plate_detector = PlateYoloDetector(session_for(plates.model), plates.score_threshold, plates.nms_iou,
                                           plates.tiles, plates.road_top, plates.road_bottom, plates.tile_every)
        detectors.append(plate_detector)
    people = config.people
    if people.enabled:
        coco = CocoDetector(session_for(people.model), people.score_threshold, people.nms_iou)
        detectors.append(SecondLine(coco, plate_detector, people, every=people.live_every if live else 1))
    return detectors


def _face_model(key: str, session, config: DetectConfig) -> Detector:
    faces = config.faces
    if key == "yolo5face":
        return Yolo5FaceDetector(session, faces.score_threshold, faces.nms_iou)
    model_class = YuNetDetector if key == "yunet" else CenterFaceDetector
    return model_class(session, faces.score_threshold, faces.nms_iou, faces.input_long_side)


def guarded(detectors: list[Detector], config: DetectConfig, live: bool) -> GuardedDetector:
    """The detectors under their deadline: a live source's, or for files the long one that only catches a hang.

    A file has no frame arriving behind the one being detected, so a slow detection
    (a busy machine, a large frame) costs time, not privacy; a live deadline there
    blurred a third of a 1080p file whole on a loaded machine.
    """
    timeout_ms = config.timeout_ms if live else config.offline_timeout_ms
    return GuardedDetector(detectors, timeout_ms / 1000, side_by_side=config.side_by_side)


def model_ids(config: DetectConfig) -> dict[str, str]:
    """`name -> sha256` of the models a config uses, for sidecars and reports."""
    return {MODELS[k].filename: MODELS[k].sha256 for k in model_keys(config)}
