"""`run_bench`'s stored-detail measure end to end: the real pipeline and redactor, a scripted detector.

The canary clip has two checkerboard patches; the ground truth calls one a plate and the other
a face. The detector finds only the plate, so the plate's stored pixels lose their detail in
every frame and the face's never do, whatever the cadence, and coverage says the same.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ScriptedDetector, canary_frames, write_clip
from edge.bench.annotations import load_annotations
from edge.bench.runner import BenchInput, run_bench
from edge.config import Config, RedactConfig, TrackConfig
from edge.detect.guard import GuardedDetector
from edge.types import Detections, Label

FRAMES = 12
PLATE_XYXY = [100, 60, 180, 140]  # the canary patch
FACE_XYXY = [220, 150, 300, 230]  # the patch nobody detects
PLATE_FOUND = Detections(np.array([PLATE_XYXY], np.float32), np.array([0.9], np.float32), np.array([Label.PLATE]))


def _boxes() -> list[dict]:
    return [{"label": "plate", "xyxy": PLATE_XYXY, "track": 1}, {"label": "face", "xyxy": FACE_XYXY, "track": 2}]


def _bench(path: Path, truth_path: Path, fmt: str, config: Config, detector: ScriptedDetector):
    subject = BenchInput.open(path)
    truth = load_annotations(truth_path, fmt, media=subject.media)
    guarded = GuardedDetector([detector], timeout_s=60)
    try:
        return run_bench(subject, truth, config, "scripted", detector=guarded)
    finally:
        guarded.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("detail")
    video = write_clip(folder / "canary.mp4", canary_frames(FRAMES))
    truth = {"width": 320, "height": 240, "frame_count": FRAMES,
             "frames": [{"index": i, "boxes": _boxes()} for i in range(FRAMES)]}
    (folder / "gt.json").write_text(json.dumps(truth))
    return video, folder / "gt.json"


# Pixelation leaves block edges where the plate was: measured against the redacted image instead of
# a copy of the source, they would read as detail kept, so this run also proves the copy is the source's.
@pytest.mark.parametrize("every,mode", [(1, "gaussian"), (3, "gaussian"), (3, "pixelate")])
def test_video_detected_plate_is_hidden_and_undetected_face_is_not(clip, every, mode):
    config = Config(track=TrackConfig(detect_every=every), redact=RedactConfig(mode=mode))
    run = _bench(*clip, "sample", config, ScriptedDetector(default=PLATE_FOUND))
    plate, face = run.metrics.classes["plate"], run.metrics.classes["face"]
    assert run.metrics.frames == FRAMES and run.metrics.frames_whole_frame == 0
    assert (plate.hidden, plate.hidden_scored, plate.recall) == (1.0, FRAMES, 1.0)
    assert plate.hidden_by_size["medium"].recall == 1.0 and plate.longest_detail_leak_run == 0
    assert (face.hidden, face.hidden_scored, face.recall) == (0.0, FRAMES, 0.0)
    assert face.detail_leak_run_by_track == {"2": FRAMES} and face.longest_leak_run == FRAMES
    assert run.stage_ms["detail"] >= 0 and run.models == {}


@pytest.mark.parametrize("on_failure,outcome", [("blur_frame", "frames_whole_frame"), ("drop_frame", "frames_dropped")])
def test_video_frames_hidden_whole_or_dropped_hide_every_box(clip, on_failure, outcome):
    config = Config(redact=RedactConfig(on_failure=on_failure))
    run = _bench(*clip, "sample", config, ScriptedDetector(raise_on={-1}))
    assert getattr(run.metrics, outcome) == FRAMES
    for name in ("plate", "face"):
        assert run.metrics.classes[name].hidden == 1.0 and run.metrics.classes[name].hidden_scored == FRAMES


def test_photos_detected_plate_is_hidden_and_undetected_face_is_not(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    images = []
    for index, image in enumerate(canary_frames(2)):
        cv2.imwrite(str(photos / f"{index}.png"), image)
        images.append({"id": index + 1, "file_name": f"{index}.png", "width": 320, "height": 240})
    categories = [{"id": 1, "name": "plate"}, {"id": 2, "name": "face"}]
    annotations = [{"image_id": image["id"], "category_id": category, "bbox": [x1, y1, x2 - x1, y2 - y1]}
                   for image in images for category, (x1, y1, x2, y2) in ((1, PLATE_XYXY), (2, FACE_XYXY))]
    (tmp_path / "coco.json").write_text(json.dumps({"images": images, "categories": categories,
                                                    "annotations": annotations}))
    run = _bench(photos, tmp_path / "coco.json", "coco", Config(), ScriptedDetector(default=PLATE_FOUND))
    plate, face = run.metrics.classes["plate"], run.metrics.classes["face"]
    assert (plate.hidden, face.hidden, plate.hidden_scored, face.hidden_scored) == (1.0, 0.0, 2, 2)
    assert (plate.recall, face.recall) == (1.0, 0.0)
