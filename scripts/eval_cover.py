"""Score the temporal cover from stored files on a dashcam-like drive the detectors were not picked for.

Builds a drive from development photos (faces and plates; the committed sample's photos
excluded): each scene is one photo, standing in front of a blurred backdrop, that a virtual camera
drives towards (it grows from 35 % to 95 % of the frame width and drifts sideways), and scenes
follow each other by hard cuts, with no black frames between. The ground truth goes
through the same per-frame transform. Then the real pipeline runs on it (the configured
detectors, cadence, tracker and redactor, offline or live with the file paced at its own
rate, optionally with busy processes taking the CPU), writes a real video file, and that
file is decoded and scored box by box:

* hidden: the box's core keeps less than MAX_RETAINED of its source detail (edge.bench.stored);
* whole_hidden: the auditor's measure (`edge.bench.stored.box_hidden`): a face's core and 2/3 of its
  head ellipse, a plate's 85 %, lost their detail; with each object's longest run of leaked frames;
* detected at a bracket: a keyframe at or before the frame, or at or after it (the nearest
  of each), found the object (a detection of its class with IoU >= 0.3, or whose centre lies
  inside the box);
* a cover violation: a leaked box on a frame between keyframes whose object was detected,
  and hidden, at a bracketing keyframe. The temporal cover promises none. The other leaks
  are detector recall (never found at the bracket: `undetected_leaks`) and mask shape
  (found, but the mask missed the ground truth's core even there: `mask_leaks`).

Usage (from the repository root; about 1-3 minutes)::

    python scripts/eval_cover.py --data ../shared/data --out /tmp/cover [--config FILE] [--live] [--load 2]

Prints one JSON summary, and writes it to OUT/cover.json with the cover violations and every
leaked box (the auditor's measure): frame, object, box, whether the frame was a keyframe,
whether its core was hidden, and which bracketing keyframes found it.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.bench.metrics import LeakRuns  # noqa: E402
from edge.bench.runner import BenchInput, load_truth  # noqa: E402
from edge.bench.stored import MAX_RETAINED, box_hidden, core_retained  # noqa: E402
from edge.camera.opencv import VideoFileSource  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.detect.boxes import iou_matrix  # noqa: E402
from edge.detect.factory import build_detectors, guarded  # noqa: E402
from edge.pipeline import Pipeline  # noqa: E402
from edge.record.encoder import EncoderSettings, VideoEncoder  # noqa: E402
from edge.redact import Redactor  # noqa: E402
from edge.types import Detections, Label  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 30
SCENE_FRAMES = 45
SIZE_BANDS = ((0, 16), (16, 32), (32, 64), (64, 128), (128, 10_000))  # box height in px


def _photos(data: Path) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """(image path, xyxy, label) for every annotated development photo but the sample's."""
    used = (REPO / "edge" / "data" / "sample" / "ATTRIBUTION.md").read_text()
    sets = [(data / "faces-roboflow-sample" / "images", data / "faces-roboflow-sample" / "labels", None),
            (data / "plates-openimages-valid", data / "plates-openimages-valid" / "_annotations.coco.json",
             {"0": "plate"})]  # Roboflow named the plate category "0"
    photos = []
    for images, annotation_path, classes in sets:
        subject = BenchInput.open(images)
        truth = load_truth(subject, annotation_path, classes=classes)
        for key, record in sorted(truth.truths.items()):
            if len(record.xyxy) and Path(key).name not in used:
                photos.append((images / key, record.xyxy.astype(np.float64), record.label.copy()))
    return photos


def _placement(width: int, height: int, t: float, drift: tuple[float, float]) -> tuple[float, float, float]:
    """(x0, y0, scale) of the photo in the frame at scene time t in [0, 1]: the car drives towards it.

    The photo grows from 35 % to 95 % of the frame width (faster near the end, as an object
    does when approached) and drifts sideways, as a roadside object does.
    """
    fit = min(WIDTH / width, HEIGHT / height)
    scale = fit * (0.35 + 0.6 * t ** 1.6)
    x0 = (WIDTH - width * scale) / 2 + drift[0] * t * WIDTH
    y0 = (HEIGHT - height * scale) / 2 + drift[1] * t * HEIGHT
    return x0, y0, scale


def build_drive(data: Path, scenes: int, seed: int, out: Path) -> tuple[Path, list[list[tuple]]]:
    """Write OUT/drive.mp4; return per frame the (xyxy, label, track) ground truth."""
    rng = random.Random(seed)
    photos = _photos(data)
    faces = [p for p in photos if (p[2] == Label.FACE).any()]
    plates = [p for p in photos if (p[2] == Label.PLATE).any()]
    chosen = [rng.choice(faces if i % 2 == 0 else plates) for i in range(scenes)]
    truth: list[list[tuple]] = []
    path = out / "drive.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for scene, (image_path, xyxy, label) in enumerate(chosen):
            image = cv2.imread(str(image_path))
            height, width = image.shape[:2]
            # The backdrop: the photo itself, stretched and blurred past recognition (no labelled detail).
            backdrop = cv2.GaussianBlur(cv2.resize(image, (WIDTH // 8, HEIGHT // 8)), (0, 0), 6)
            backdrop = cv2.resize(backdrop, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
            drift = (rng.uniform(-0.15, 0.15), rng.uniform(-0.08, 0.08))
            for i in range(SCENE_FRAMES):
                x0, y0, scale = _placement(width, height, i / (SCENE_FRAMES - 1), drift)
                matrix = np.array([[scale, 0, x0], [0, scale, y0]])
                frame = cv2.warpAffine(image, matrix, (WIDTH, HEIGHT), dst=backdrop.copy(), flags=cv2.INTER_AREA,
                                       borderMode=cv2.BORDER_TRANSPARENT)
                boxes = xyxy * scale + [x0, y0, x0, y0]
                clipped = np.clip(boxes, [0, 0, 0, 0], [WIDTH, HEIGHT, WIDTH, HEIGHT])
                area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6), axis=1)
                visible = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1) / area
                truth.append([(clipped[j], int(label[j]), scene * 1000 + j) for j in range(len(xyxy))
                              if visible[j] >= 0.5 and (clipped[j, 3] - clipped[j, 1]) >= 6])
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(stream.encode(None))
    return path, truth


class _Recorder:
    """A plain sink: the pipeline's redacted frames into one video file."""

    def __init__(self, encoder: VideoEncoder) -> None:
        self.encoder = encoder

    def write(self, frame) -> None:
        self.encoder.write(frame)

    def note_dropped(self) -> None:
        pass

    def close(self) -> None:
        self.encoder.close()


def run_pipeline(clip: Path, config_path: Path | None, live: bool, out: Path) -> tuple[Path, dict, dict]:
    config = load_config(config_path)
    keyframes: dict[int, Detections | None] = {}
    lock = threading.Lock()

    def observe(index, verdict) -> None:
        with lock:
            keyframes[index] = verdict if isinstance(verdict, Detections) else None

    source = VideoFileSource(clip, realtime=live)
    detector = guarded(build_detectors(config.detect, live), config.detect, live)
    encoder = VideoEncoder(out / "stored.mp4", source.width, source.height, source.fps,
                           EncoderSettings(crf=12, preset="veryfast"))
    try:
        stats = Pipeline(source, detector, Redactor(config.redact), _Recorder(encoder), tracking=config.track,
                         live=live, on_detections=observe).run()
    finally:
        detector.close()
        source.close()
    return out / "stored.mp4", keyframes, stats.to_dict()


def _decoded(path: Path) -> tuple[list[np.ndarray], list[float]]:
    images, stamps = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            images.append(frame.to_ndarray(format="bgr24"))
            stamps.append(float(frame.time))
    return images, stamps


def _matches(box: np.ndarray, label: int, found: Detections | None) -> np.ndarray:
    """The detections of the object's class that found it: IoU >= 0.3, or the centre inside the box."""
    if found is None or not len(found):
        return np.zeros((0, 4))
    xyxy = found.xyxy[found.label == label].astype(np.float64)
    if not len(xyxy):
        return xyxy
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    inside = ((centres[:, 0] >= box[0]) & (centres[:, 0] <= box[2]) & (centres[:, 1] >= box[1])
              & (centres[:, 1] <= box[3]))
    return xyxy[inside | (iou_matrix(box[None], xyxy)[0] >= 0.3)]


def score(clip: Path, stored_path: Path, truth: list[list[tuple]], keyframes: dict) -> dict:
    source, _ = _decoded(clip)
    stored, stamps = _decoded(stored_path)
    source_of = [min(len(source) - 1, round(stamp * FPS)) for stamp in stamps]
    keys = sorted(keyframes)
    stored_at = {f: i for i, f in enumerate(source_of)}
    box_of = {(track, f): box for f, rows in enumerate(truth) for box, _, track in rows}
    counts = {name: {"boxes": 0, "hidden": 0, "violations": 0, "mask_leaks": 0, "undetected_leaks": 0,
                     "by_height": {f"{lo}-{hi}": [0, 0] for lo, hi in SIZE_BANDS},
                     "whole_hidden": 0, "whole_by_height": {f"{lo}-{hi}": [0, 0] for lo, hi in SIZE_BANDS}}
              for name in ("face", "plate")}
    violations, leaks = [], []
    runs = LeakRuns()
    for stored_index, f in enumerate(source_of):
        before = max((k for k in keys if k <= f), default=None)
        after = min((k for k in keys if k >= f), default=None)
        for box, label, track in truth[f]:
            name = Label(label).name.lower()
            c = counts[name]
            c["boxes"] += 1
            band = next(f"{lo}-{hi}" for lo, hi in SIZE_BANDS if lo <= box[3] - box[1] < hi)
            c["by_height"][band][0] += 1
            # The auditor's measure: a face's core and 2/3 of its head ellipse, a plate's 85 %, lost their detail.
            whole = box_hidden(source[f], stored[stored_index], box, label)
            c["whole_hidden"] += int(whole)
            c["whole_by_height"][band][0] += 1
            c["whole_by_height"][band][1] += int(whole)
            runs.add_box(f, label, track, leaked=not whole)
            core_hidden = core_retained(source[f], stored[stored_index], box) < MAX_RETAINED
            # What each bracketing keyframe found of this object.
            matches = {k: _matches(box_of[(track, k)], label, keyframes[k])
                       for k in {before, after} if k is not None and (track, k) in box_of}
            seen = sorted(k for k, found in matches.items() if len(found))
            if not whole:
                leaks.append({"frame": f, "track": track, "label": name, "box": [round(v) for v in box],
                              "keyframe": f in keyframes, "core_hidden": core_hidden, "found_at_bracket": seen,
                              "found_boxes": {k: found.round().tolist() for k, found in sorted(matches.items())}})
            if core_hidden:
                c["hidden"] += 1
                c["by_height"][band][1] += 1
                continue
            # Hidden where seen: the mask worked on the keyframe, so a leak between is the cover's fault.
            hidden_there = [k for k in seen if k in stored_at and core_retained(
                source[k], stored[stored_at[k]], box_of[(track, k)]) < MAX_RETAINED]
            if hidden_there and f not in keyframes:
                c["violations"] += 1
                violations.append({"frame": f, "track": track, "label": name, "box": [round(v) for v in box],
                                   "bracket": [before, after], "hidden_at": hidden_there})
            elif seen:
                c["mask_leaks"] += 1  # found, but the mask on the keyframe itself missed the core
            else:
                c["undetected_leaks"] += 1
    for name, c in counts.items():
        c["recall"] = round(c["hidden"] / c["boxes"], 4) if c["boxes"] else None
        c["by_height"] = {k: (round(h / n, 3) if n else None, n) for k, (n, h) in c["by_height"].items()}
        c["whole_recall"] = round(c["whole_hidden"] / c["boxes"], 4) if c["boxes"] else None
        c["whole_by_height"] = {k: (round(h / n, 3) if n else None, n) for k, (n, h) in c["whole_by_height"].items()}
        longest = list(runs.by_track(Label[name.upper()]).values())  # per object, its longest run of leaked frames
        c["objects"], c["objects_leaking"] = len(longest), sum(run > 0 for run in longest)
        c["objects_leaking_over_3_frames"] = sum(run > 3 for run in longest)
        c["longest_leak_run"] = max(longest, default=0)
    return {"stored_frames": len(stored), "source_frames": len(source),
            "stored_duration_s": round(stamps[-1] + 1 / FPS, 3) if stamps else 0.0,
            "source_duration_s": round(len(source) / FPS, 3), "keyframes": len(keys),
            "classes": counts, "violations": violations[:50], "violation_count": len(violations),
            "leaks": leaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--live", action="store_true", help="pace the file at its own rate, as a camera")
    parser.add_argument("--load", type=int, default=0, help="busy processes taking the CPU during the run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clip, truth = build_drive(args.data, args.scenes, args.seed, args.out)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        stored, keyframes, stats = run_pipeline(clip, args.config, args.live, args.out)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    result = {"config": str(args.config or "defaults"), "live": args.live, "load": args.load, "seed": args.seed,
              "scenes": args.scenes, "stats": stats, **score(clip, stored, truth, keyframes)}
    (args.out / "cover.json").write_text(json.dumps(result, indent=2))
    summary = {k: v for k, v in result.items() if k not in ("violations", "leaks")}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
