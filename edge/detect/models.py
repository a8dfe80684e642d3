"""The model registry: every model dashcam ships, its file, sha256, role and the class that runs it.

One entry per model: its config key, file name and sha256 (also written in
models/README.md), its role (`face`, `plate` or `people`: the config's choices for
`detect.faces.models`, `detect.plates.model` and `detect.people.model` come from here)
and the detector class that runs it, named as `module:Class` so that this module (and the
config that reads the choices) imports no onnxruntime. A missing or altered file is a
`ModelError` naming the file, never a silent fallback: a wrong model would quietly lower
recall.
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from edge.errors import ModelError


Role = Literal["face", "plate", "people"]


class ConfiguredDetector(Protocol):
    """A model's detector class: built from its onnxruntime session and the `detect` config section."""

    @classmethod
    def from_config(cls, session: Any, config: Any) -> Any: ...


@dataclass(frozen=True)
class ModelFile:
    key: str
    filename: str
    sha256: str
    role: Role
    detector: str  # "module:Class" of the detector that runs it

    def detector_class(self) -> type[ConfiguredDetector]:
        """The class that runs this model, imported now (it imports onnxruntime)."""
        module, name = self.detector.split(":")
        found: type[ConfiguredDetector] = getattr(importlib.import_module(module), name)
        return found


MODELS: dict[str, ModelFile] = {
    m.key: m
    for m in (
        ModelFile("yunet", "yunet_n_dynamic.onnx",
                  "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
                  "face", "edge.detect.yunet:YuNetDetector"),
        ModelFile("yolo5face", "yolov5face_n05_dynamic.onnx",
                  "b26f3cb2fb4cd761f1ea53de38a1c3cebf41af4df508d99c574d9d763c1cf024",
                  "face", "edge.detect.yolo5face:Yolo5FaceDetector"),
        ModelFile("centerface", "centerface_dynamic.onnx",
                  "37713e0a94d63983cdc00758eb89f3ace4eb1638ff9aee4aebb2c97413dd953f",
                  "face", "edge.detect.centerface:CenterFaceDetector"),
        ModelFile("plate_yolov8n_int8", "plate_yolov8n_safelicensing_640.int8.onnx",
                  "ea219b0045ca4edd97bc775989d02e35dcdd4863f579f621aa9312e54a3e2083",
                  "plate", "edge.detect.yolo:PlateYoloDetector"),
        ModelFile("plate_yolov8n", "plate_yolov8n_safelicensing_640.onnx",
                  "1a520e47123c574e431325a11037ba55818cfe446887d38d10d590e523ceee3c",
                  "plate", "edge.detect.yolo:PlateYoloDetector"),
        ModelFile("yolov5n_coco", "yolov5n_v6.1_coco.onnx",
                  "9c78f543d841b9e2a522e1eb31a04c51a2597122b51ceab10deb9773ed7fc77c",
                  "people", "edge.detect.coco:CocoDetector"),
        ModelFile("yolov5n_coco_int8", "yolov5n_v6.1_coco.int8.onnx",
                  "efd2ddb105ba12bce96254bad90104064a4a003f1d56f1008266933e2f646c5c",
                  "people", "edge.detect.coco:CocoDetector"),
    )
}


def keys_for(role: Role) -> tuple[str, ...]:
    """The model keys of one role, in registry order: the config's choices."""
    return tuple(m.key for m in MODELS.values() if m.role == role)


def default_models_dir() -> Path:
    """models/ of a source checkout, else the copy that `pip install` puts under share/."""
    checkout = Path(__file__).resolve().parents[2] / "models"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "privacy-dashcam" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model(key: str, models_dir: Path | None = None) -> Path:
    """Path of a verified model file; raises ModelError if it is missing or its sha256 differs."""
    model = MODELS[key]
    folder = models_dir or default_models_dir()
    path = folder / model.filename
    if not path.is_file():
        raise ModelError(f"model file missing: {path} (the {key} model; see models/README.md)")
    actual = sha256_of(path)
    if actual != model.sha256:
        raise ModelError(
            f"model file {path} has sha256 {actual[:16]}..., expected {model.sha256[:16]}...: "
            "it is corrupt or not the file models/README.md describes"
        )
    return path
