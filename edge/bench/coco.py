"""JSON annotations: COCO detection files (still images or one video's frames) and the sample clip's JSON.

COCO for video: the file describes one video, one `images` entry per frame. The frame
index (0-based) is taken from each image's `frame_index`, else `frame_id` (as in
mmtracking's CocoVID), else the images' order by `id` (as CVAT's COCO export numbers
frames from 1). Track ids come from an annotation's `track_id`, `instance_id` or
`attributes.track_id`; -1 when absent. Whether a file is video is the caller's call
(MediaInfo); when the caller does not say, images with a frame index make it video.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.bench.truth import TruthBuilder, read_mapping
from edge.errors import SourceError

_FRAME_FIELDS = ("frame_index", "frame_id")


def read_json(path: Path, builder: TruthBuilder) -> None:
    """COCO detection JSON, or the sample clip's per-frame JSON (it has `frames`, not `images`)."""
    data = read_mapping(path, json.loads, json.JSONDecodeError, "JSON")
    if "frames" in data and "images" not in data:
        _read_sample(path, data, builder)
    else:
        _read_coco(path, data, builder)


def _read_coco(path: Path, data: dict[str, Any], builder: TruthBuilder) -> None:
    try:
        images = list(data["images"])
        annotations = list(data["annotations"])
        names = {c["id"]: c["name"] for c in data.get("categories", [])}
        video = builder.media.kind == "video" or (builder.media.kind is None and _has_frame_index(images))
        keys = _declare_frames(path, images, builder) if video else _declare_images(images, builder)
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{path}: not COCO detection JSON ({type(exc).__name__}: {exc})") from None
    for index, annotation in enumerate(annotations):
        _add_box(path, index, annotation, keys, names, builder)


def _has_frame_index(images: list[dict]) -> bool:
    return bool(images) and any(all(f in image for image in images) for f in _FRAME_FIELDS)


def _declare_images(images: list[dict], builder: TruthBuilder) -> dict[Any, str]:
    builder.declare_images({image["file_name"]: (image["width"], image["height"]) for image in images})
    return {image["id"]: image["file_name"] for image in images}


def _declare_frames(path: Path, images: list[dict], builder: TruthBuilder) -> dict[Any, str]:
    sizes = {(int(image["width"]), int(image["height"])) for image in images}
    if len(sizes) > 1:
        raise SourceError(f"{path}: images differ in size ({sorted(sizes)}): not the frames of one video")
    builder.declare_video(sizes.pop() if sizes else None)
    keys = {image_id: str(index) for image_id, index in _frame_indices(images).items()}
    if len(set(keys.values())) < len(keys):
        raise SourceError(f"{path}: a frame index appears twice: one file must describe one video")
    return keys


def _frame_indices(images: list[dict]) -> dict[Any, int]:
    for name in _FRAME_FIELDS:
        if all(name in image for image in images):
            return {image["id"]: int(image[name]) for image in images}
    ordered = sorted(images, key=lambda image: image["id"])
    return {image["id"]: index for index, image in enumerate(ordered)}


def _add_box(path: Path, index: int, annotation: dict, keys: Mapping[Any, str], names: Mapping[Any, str],
             builder: TruthBuilder) -> None:
    try:
        image_id, category = annotation["image_id"], annotation["category_id"]
        x, y, w, h = (float(v) for v in annotation["bbox"])
        track = int(_track_id(annotation))
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{path}: annotation #{index} is malformed ({type(exc).__name__}: {exc})") from None
    if image_id not in keys:
        builder.beyond_input()  # its image is not in the file, or not in the input
        return
    builder.add(keys[image_id], (x, y, x + w, y + h), names.get(category, str(category)), track)


def _track_id(annotation: dict) -> Any:
    for name in ("track_id", "instance_id"):
        if name in annotation:
            return annotation[name]
    return (annotation.get("attributes") or {}).get("track_id", -1)


def _read_sample(path: Path, data: dict[str, Any], builder: TruthBuilder) -> None:
    """The committed sample clip's JSON (scripts/make_sample.py): frames of labelled, tracked boxes."""
    try:
        builder.declare_video((data["width"], data["height"]), data.get("frame_count", len(data["frames"])))
        for frame in data["frames"]:
            for box in frame["boxes"]:
                builder.add(str(frame["index"]), box["xyxy"], box["label"], box.get("track", -1))
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{path}: malformed sample annotations ({type(exc).__name__}: {exc})") from None
