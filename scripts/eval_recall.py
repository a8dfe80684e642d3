"""Blur recall of the configured detectors on annotated still images (the README's recall table).

For each image it runs the same detectors and redaction geometry as `dashcam anonymize`
and measures which ground-truth boxes the applied redaction mask covers (>= tau of
their area). Frames that fail closed count as fully covered, as they are in storage.

    python scripts/eval_recall.py --data ../shared/data [--config configs/default.yaml] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edge.bench.annotations import GroundTruth, load_coco, load_yolo
from edge.bench.coverage import CoverageTally
from edge.camera.images import list_images, read_image
from edge.config import Config, load_config
from edge.detect.factory import build_detectors, guarded
from edge.redact import redaction_mask
from edge.types import DetectionFailure, Label


def plate_set(root: Path) -> tuple[Path, list[GroundTruth]]:
    folder = root / "plates-openimages-valid"
    truths, _sizes = load_coco(folder / "_annotations.coco.json", category_label=Label.PLATE)
    return folder, truths


def face_set(root: Path) -> tuple[Path, list[GroundTruth]]:
    folder = root / "faces-roboflow-sample"
    sizes = {}
    for path in list_images(folder / "images"):
        height, width = read_image(path).shape[:2]
        sizes[path.name] = (width, height)
    return folder / "images", load_yolo(folder / "labels", sizes, ["face", "license"])


def evaluate(folder: Path, truths: list[GroundTruth], config: Config, wanted: Label) -> dict:
    detector = guarded(build_detectors(config.detect), config.detect, live=False)
    tally = CoverageTally()
    failures = 0
    started = time.perf_counter()
    for truth in truths:
        image = read_image(folder / truth.key)
        verdict = detector.detect(image)
        if isinstance(verdict, DetectionFailure):
            failures += 1
            mask = np.ones(image.shape[:2], bool)
        else:
            mask = redaction_mask(verdict, image.shape[:2], config.redact)
        keep = truth.label == int(wanted)
        tally.add(mask, truth.xyxy[keep], truth.label[keep])
    seconds = time.perf_counter() - started
    detector.close()
    result = {"images": len(truths), "seconds": round(seconds, 1), "detector_failures": failures}
    result["boxes"] = tally.recall(wanted)[1]
    for tau in (0.5, 0.9):
        result[f"recall@{tau}"] = round(tally.recall(wanted, tau)[0], 4)
    result["recall@0.9_by_height"] = {k: [round(v, 4), n] for k, (v, n) in tally.recall_by_size(wanted).items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--config", type=Path)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", choices=("plates", "faces"), help="evaluate one set only")
    args = parser.parse_args()
    config = load_config(args.config)
    report = {}
    if args.only != "faces":
        report["plates"] = evaluate(*plate_set(args.data), config, Label.PLATE)
    if args.only != "plates":
        report["faces"] = evaluate(*face_set(args.data), config, Label.FACE)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
