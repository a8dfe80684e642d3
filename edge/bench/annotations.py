"""Loading ground truth in any supported format: `load_annotations`, format detection, and the
older `load_coco` / `load_yolo` / `load_sample_truth` helpers kept for existing callers.

Formats: coco (images or one video), yolo, cvat (cvat-video, cvat-images), mot, wider,
ccpd, openalpr, ufpr, sample (the committed clip's JSON). Each reader lives in its own
module; the records, label mapping and counting live in `edge.bench.truth`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from edge.bench.coco import read_json
from edge.bench.cvat import read_cvat
from edge.bench.datasets import read_ccpd, read_wider
from edge.bench.mot import read_mot
from edge.bench.pertxt import read_openalpr, read_ufpr, read_yolo
from edge.bench.truth import (LABEL_ALIASES, Annotations, GroundTruth, LabelMap, LoadIssues, MediaInfo, Size,
                              TruthBuilder, read_text)
from edge.camera.images import is_image, read_image
from edge.errors import SourceError
from edge.types import Label

__all__ = ["FORMATS", "LABEL_ALIASES", "Annotations", "GroundTruth", "LabelMap", "LoadIssues", "MediaInfo",
           "detect_format", "image_sizes", "load_annotations", "load_coco", "load_sample_truth", "load_yolo"]

Reader = Callable[[Path, TruthBuilder], None]
_READERS: dict[str, Reader] = {
    "coco": read_json,
    "sample": read_json,
    "yolo": read_yolo,
    "cvat": read_cvat,
    "cvat-video": functools.partial(read_cvat, expect="video"),
    "cvat-images": functools.partial(read_cvat, expect="images"),
    "mot": read_mot,
    "wider": read_wider,
    "ccpd": read_ccpd,
    "openalpr": read_openalpr,
    "ufpr": read_ufpr,
}
FORMATS = ("auto", *_READERS)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def load_annotations(path: Path, fmt: str = "auto", *, media: MediaInfo | None = None,
                     classes: Mapping[str, str] | None = None, force_label: str | Label | None = None,
                     class_names: Sequence[str] | None = None) -> Annotations:
    """Ground truth from `path` in format `fmt` ('auto' guesses from the path; see `detect_format`).

    `media` says what the input is (video frame count and size, or image sizes); formats that
    do not store sizes need it. `classes` extends the class-name mapping (name -> face, plate
    or ignore); `force_label` labels every box alike; `class_names` names YOLO class numbers.
    Problems in the file raise SourceError naming it; clipped, skipped and unknown boxes are
    counted in the result's `issues` and logged once.
    """
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in _READERS:
        raise SourceError(f"unknown annotation format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.exists():
        raise SourceError(f"annotations not found: {path}")
    builder = TruthBuilder(path, fmt, LabelMap.build(classes, force_label), media or MediaInfo())
    reader = functools.partial(read_yolo, class_names=class_names) if fmt == "yolo" else _READERS[fmt]
    reader(path, builder)
    return builder.build()


def detect_format(path: Path) -> str:
    """The format a path most likely holds, from its name and a first look at its content."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"annotations not found: {path}")
    if path.is_dir():
        return _folder_format(path)
    suffix = path.suffix.lower()
    by_suffix = {".xml": "cvat", ".json": "coco", ".yaml": "yolo", ".yml": "yolo"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix == ".txt":
        return _txt_format(path)
    raise SourceError(f"cannot tell the annotation format of {path}; pass one of {', '.join(FORMATS[1:])}")


def _folder_format(path: Path) -> str:
    if (path / "gt" / "gt.txt").is_file():
        return "mot"
    txt = next((p for p in sorted(path.rglob("*.txt")) if p.name != "classes.txt"), None)
    if txt is None:
        if any("&" in p.name for p in path.rglob("*.jpg")):
            return "ccpd"
        return "yolo"
    first = read_text(txt).lstrip().split("\n", 1)[0]
    if first.startswith("camera:") or "position_plate:" in read_text(txt):
        return "ufpr"
    if first.split("\t", 1)[0].lower().endswith(_IMAGE_SUFFIXES):
        return "openalpr"
    return "yolo"


def _txt_format(path: Path) -> str:
    lines = read_text(path).lstrip().splitlines()[:2]
    if lines and lines[0].count(",") >= 8:
        return "mot"
    if len(lines) == 2 and lines[0].strip().lower().endswith(_IMAGE_SUFFIXES) and lines[1].strip().isdigit():
        return "wider"
    if lines and lines[0].strip().lower().endswith(_IMAGE_SUFFIXES):
        return "ccpd"  # a split list of image paths
    raise SourceError(f"cannot tell the annotation format of {path}; pass one of {', '.join(FORMATS[1:])}")


def image_sizes(folder: Path) -> dict[str, Size]:
    """(width, height) of every image below `folder`, keyed by its relative path, for `MediaInfo.images`.

    Formats without sizes (YOLO, WIDER, CCPD, openalpr, UFPR) need them to clip boxes. This
    decodes each image once, which for a few thousand photos takes a minute or so.
    """
    sizes = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image(p)):
        height, width = read_image(path).shape[:2]
        sizes[path.relative_to(folder).as_posix()] = (width, height)
    return sizes


def load_coco(path: Path, category_label: Label | None = None
              ) -> tuple[list[GroundTruth], dict[str, tuple[int, int]]]:
    """COCO detection JSON -> ground truth per image, plus each image's (width, height).

    `category_label` forces one label for every box (single-class sets whose category
    names are not descriptive).
    """
    annotations = load_annotations(path, "coco", force_label=category_label)
    truths = list(annotations.truths.values())
    return truths, {t.key: (t.width, t.height) for t in truths}


def load_yolo(labels_dir: Path, image_sizes: dict[str, tuple[int, int]], class_names: list[str]
              ) -> list[GroundTruth]:
    """YOLO txt (class cx cy w h, normalized) for each image name in `image_sizes`."""
    annotations = load_annotations(labels_dir, "yolo", media=MediaInfo.images(image_sizes), class_names=class_names)
    return [annotations.truths[key] for key in sorted(annotations.truths)]


def load_sample_truth(path: Path) -> list[GroundTruth]:
    """The committed sample clip's per-frame JSON (see scripts/make_sample.py): one record per frame."""
    annotations = load_annotations(path, "sample")
    return [annotations.get(str(index)) for index in range(annotations.frame_count or 0)]
