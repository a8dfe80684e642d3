"""Builds the configured detectors from verified model files, each by the class the model registry names."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.config import DetectConfig
from edge.detect import Detector
from edge.detect.guard import GuardedDetector
from edge.detect.models import MODELS, resolve_model
from edge.detect.second_line import SecondLine
from edge.detect.session import create_session
from edge.detect.union import FaceUnion


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

    def build(key: str) -> Any:
        """The registry's detector class for `key`, built from its own part of the config."""
        return MODELS[key].detector_class().from_config(session_for(key), config)

    detectors: list[Detector] = []
    faces = config.faces
    if faces.enabled:
        detectors.append(FaceUnion([build(key) for key in faces.models],
                                   faces.head_width, faces.head_height, faces.head_raise))
    plate_detector = None
    if config.plates.enabled:
        plate_detector = build(config.plates.model)
        detectors.append(plate_detector)
    people = config.people
    if people.enabled:
        detectors.append(SecondLine(build(people.model), plate_detector, people,
                                    every=people.live_every if live else 1))
    return detectors


def guarded(detectors: list[Detector], config: DetectConfig, live: bool) -> GuardedDetector:
    """The detectors under their deadline: a live source's, or for files the long one that only catches a hang.

    A file has no frame arriving behind the one being detected, so a slow detection
    (a busy machine, a large frame) costs time, not privacy; a live deadline there
    blurred a third of a 1080p file whole on a loaded machine.
    """
    timeout_ms = config.timeout_ms if live else config.offline_timeout_ms
    return GuardedDetector(detectors, timeout_ms / 1000, side_by_side=config.side_by_side,
                           mirror=mirror_mode(config.mirror, live), mirror_every=config.mirror_every)


def mirror_mode(setting: str, live: bool) -> str:
    """What the guard does with `detect.mirror` on this source: `files` is every keyframe of a file (no live
    deadline) and, on a live camera, nothing but stills."""
    if setting == "files":
        return "stills" if live else "always"
    return setting


def model_ids(config: DetectConfig) -> dict[str, str]:
    """`name -> sha256` of the models a config uses, for sidecars and reports."""
    return {MODELS[k].filename: MODELS[k].sha256 for k in model_keys(config)}
