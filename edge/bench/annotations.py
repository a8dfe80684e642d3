"""Ground-truth loaders: COCO JSON, YOLO txt folders, and the sample clip's per-frame JSON.

All return `GroundTruth` records: one image (or video frame) with its boxes as pixel
xyxy and `Label`s. Boxes are clipped to the image; ones with no area are skipped and counted.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import SourceError
from edge.types import Label

log = logging.getLogger(__name__)

# Class names as datasets spell them -> our labels.
LABEL_ALIASES = {
    "face": Label.FACE, "faces": Label.FACE, "person_face": Label.FACE,
    "plate": Label.PLATE, "license": Label.PLATE, "licence": Label.PLATE, "license_plate": Label.PLATE,
    "licence_plate": Label.PLATE, "license plate": Label.PLATE, "licence plate": Label.PLATE, "lp": Label.PLATE,
    "number_plate": Label.PLATE,
}


@dataclass
class GroundTruth:
    key: str  # image file name, or frame index as text
    xyxy: np.ndarray
    label: np.ndarray
    track: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _boxes(rows: list[tuple[float, float, float, float, Label]], width: int, height: int
           ) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    array = np.array([r[:4] for r in rows], dtype=np.float32)
    array[:, [0, 2]] = array[:, [0, 2]].clip(0, width)
    array[:, [1, 3]] = array[:, [1, 3]].clip(0, height)
    keep = (array[:, 2] > array[:, 0]) & (array[:, 3] > array[:, 1])
    if not keep.all():
        log.warning("skipped %d boxes with no area inside the image", int((~keep).sum()))
    return array[keep], np.array([int(r[4]) for r in rows], dtype=np.int64)[keep]


def load_coco(path: Path, category_label: Label | None = None) -> tuple[list[GroundTruth], dict[str, tuple[int, int]]]:
    """COCO detection JSON -> ground truth per image, plus each image's (width, height).

    Categories map through LABEL_ALIASES; `category_label` forces one label for every box
    (for single-class sets whose category names are not descriptive).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"cannot read COCO annotations {path}: {exc}") from None
    names = {c["id"]: str(c["name"]).strip().lower() for c in data.get("categories", [])}
    images = {img["id"]: img for img in data["images"]}
    rows: dict[int, list] = {image_id: [] for image_id in images}
    for ann in data["annotations"]:
        label = category_label if category_label is not None else LABEL_ALIASES.get(names.get(ann["category_id"], ""))
        if label is None or ann["image_id"] not in rows:
            continue
        x, y, w, h = ann["bbox"]
        rows[ann["image_id"]].append((x, y, x + w, y + h, label))
    truths, sizes = [], {}
    for image_id, img in images.items():
        xyxy, label = _boxes(rows[image_id], img["width"], img["height"])
        truths.append(GroundTruth(img["file_name"], xyxy, label))
        sizes[img["file_name"]] = (img["width"], img["height"])
    return truths, sizes


def load_yolo(labels_dir: Path, image_sizes: dict[str, tuple[int, int]], class_names: list[str]
              ) -> list[GroundTruth]:
    """YOLO txt (class cx cy w h, normalized) for each image name in `image_sizes`."""
    truths = []
    for image_name, (width, height) in sorted(image_sizes.items()):
        label_file = labels_dir / (Path(image_name).stem + ".txt")
        rows = []
        if label_file.is_file():
            for line in label_file.read_text().splitlines():
                parts = line.split()
                if len(parts) < 5:
                    continue
                label = LABEL_ALIASES.get(class_names[int(parts[0])].lower())
                if label is None:
                    continue
                cx, cy, w, h = (float(v) for v in parts[1:5])
                rows.append(((cx - w / 2) * width, (cy - h / 2) * height,
                             (cx + w / 2) * width, (cy + h / 2) * height, label))
        xyxy, label = _boxes(rows, width, height)
        truths.append(GroundTruth(image_name, xyxy, label))
    return truths


def load_sample_truth(path: Path) -> list[GroundTruth]:
    """The committed sample clip's per-frame JSON (see scripts/make_sample.py)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    truths = []
    for frame in data["frames"]:
        rows = [(*box["xyxy"], LABEL_ALIASES[box["label"]]) for box in frame["boxes"]]
        xyxy, label = _boxes(rows, data["width"], data["height"])
        tracks = np.array([box.get("track", -1) for box in frame["boxes"]], dtype=np.int64)[: len(label)]
        truths.append(GroundTruth(str(frame["index"]), xyxy, label, tracks))
    return truths
