"""Ground-truth records and the one place annotation boxes are cleaned, labelled and counted.

Every format reader (coco.py, cvat.py, mot.py, pertxt.py, datasets.py) only parses its
files and hands raw boxes to a `TruthBuilder`, which maps class names to `Label`s,
clips boxes to the frame, skips empty ones, drops boxes for frames or images that are not
in the input, and counts each of these in a `LoadIssues` that the report shows.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError, SourceError
from edge.types import Label

log = logging.getLogger(__name__)

# Class names as datasets spell them -> our labels (compared after `normalise_class`).
LABEL_ALIASES: dict[str, Label] = {
    "face": Label.FACE, "faces": Label.FACE, "person_face": Label.FACE, "human_face": Label.FACE,
    "plate": Label.PLATE, "license": Label.PLATE, "licence": Label.PLATE, "license_plate": Label.PLATE,
    "licence_plate": Label.PLATE, "licenseplate": Label.PLATE, "lp": Label.PLATE,
    "number_plate": Label.PLATE, "numberplate": Label.PLATE, "vehicle_registration_plate": Label.PLATE,
}
# What a caller may map a class name to; "ignore" marks a known class that is not ours (e.g. "car").
_TARGETS: dict[str, Label | None] = {"face": Label.FACE, "plate": Label.PLATE, "ignore": None}

Size = tuple[int, int]  # (width, height) in pixels


def normalise_class(name: object) -> str:
    """'License Plate', 'license-plate' and 'license_plate' all become 'license_plate'."""
    return re.sub(r"[\s_-]+", "_", str(name).strip().lower())


@dataclass
class GroundTruth:
    """One image or video frame: its boxes in pixel xyxy, their labels and track ids (-1: none)."""

    key: str  # image file name (relative path), or the 0-based frame index as text
    xyxy: np.ndarray
    label: np.ndarray
    track: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    width: int = 0
    height: int = 0

    def __post_init__(self) -> None:
        if len(self.track) == 0 and len(self.label):
            self.track = np.full(len(self.label), -1, np.int64)

    @classmethod
    def empty(cls, key: str, size: Size) -> GroundTruth:
        return cls(key, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), width=size[0], height=size[1])


@dataclass(frozen=True)
class LabelMap:
    """Class name -> Label (or None: a known class to ignore); `force` gives every box one label."""

    aliases: Mapping[str, Label | None]
    force: Label | None = None

    @classmethod
    def build(cls, extra: Mapping[str, str | Label | None] | None = None,
              force: str | Label | None = None) -> LabelMap:
        """LABEL_ALIASES extended by `extra`, e.g. {"LP": "plate", "1": "face", "car": "ignore"}."""
        aliases: dict[str, Label | None] = {normalise_class(k): v for k, v in LABEL_ALIASES.items()}
        for name, target in (extra or {}).items():
            aliases[normalise_class(name)] = _target(name, target)
        return cls(aliases, _target("force", force) if force is not None else None)

    def maps_numbers(self) -> bool:
        """Whether numeric class ids (MOT, unnamed YOLO classes) can be labelled at all."""
        return self.force is not None or any(name.isdigit() for name in self.aliases)

    def lookup(self, name: str) -> tuple[bool, Label | None]:
        """(known, label): unknown names are (False, None); ignored ones (True, None)."""
        if self.force is not None:
            return True, self.force
        key = normalise_class(name)
        return (True, self.aliases[key]) if key in self.aliases else (False, None)


def _target(name: object, target: str | Label | None) -> Label | None:
    if target is None or isinstance(target, Label):
        return target
    try:
        return _TARGETS[normalise_class(target)]
    except KeyError:
        raise ConfigError(f"class mapping {name!r} -> {target!r}: map to face, plate or ignore") from None


@dataclass
class LoadIssues:
    """What loading changed or left out, so the report can say it (nothing is dropped silently)."""

    source: str
    format: str = ""
    boxes: int = 0  # boxes kept
    clipped_boxes: int = 0  # partly outside the frame, clipped to it
    empty_boxes: int = 0  # no area after clipping: skipped
    ignored_boxes: int = 0  # flagged by the format (MOT conf 0, WIDER invalid), mapped to "ignore", or not boxes
    beyond_input: int = 0  # for frames past the video's end or images not in the input: skipped
    interpolated_boxes: int = 0  # CVAT boxes filled in between keyframes
    unknown_classes: dict[str, int] = field(default_factory=dict)  # class name -> boxes skipped

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> LoadIssues:
        return cls(**data)

    def warnings(self) -> list[str]:
        """One line per kind of problem, for the log and the report."""
        lines = [] if self.boxes else ["no boxes loaded: check the format, the input and the class mapping"]
        if self.unknown_classes:
            names = ", ".join(f"{name!r} ({count})" for name, count in sorted(self.unknown_classes.items()))
            lines.append(f"skipped boxes of unknown classes {names}; map them to face, plate or ignore")
        counted = [
            (self.beyond_input, "skipped {} boxes for frames or images that are not in the input"),
            (self.empty_boxes, "skipped {} boxes with no area inside the frame"),
            (self.clipped_boxes, "clipped {} boxes that reach outside the frame"),
            (self.ignored_boxes, "ignored {} boxes (flagged by the format, mapped to ignore, or not boxes)"),
            (self.interpolated_boxes, "interpolated {} boxes between keyframes"),
        ]
        return lines + [text.format(count) for count, text in counted if count]

    def log_warnings(self) -> None:
        """All problems in one warning line, each with its count."""
        lines = self.warnings()
        if lines:
            log.warning("%s: %s", self.source, "; ".join(lines))


@dataclass(frozen=True)
class MediaInfo:
    """What the caller knows of the input the annotations describe.

    Still images: `image_sizes` (key -> (width, height)). Video: `frame_count` and
    `frame_size`. Formats that store sizes are checked against these.
    """

    image_sizes: Mapping[str, Size] | None = None
    frame_count: int | None = None
    frame_size: Size | None = None

    @classmethod
    def video(cls, frame_count: int | None, width: int, height: int) -> MediaInfo:
        return cls(frame_count=frame_count, frame_size=(width, height))

    @classmethod
    def images(cls, sizes: Mapping[str, Size]) -> MediaInfo:
        return cls(image_sizes=sizes)

    @property
    def kind(self) -> str | None:
        """'video', 'images', or None when the caller did not say."""
        if self.frame_count is not None or self.frame_size is not None:
            return "video"
        return "images" if self.image_sizes is not None else None


@dataclass
class Annotations:
    """Loaded ground truth: records by key, what loading counted, and the frame size for video."""

    truths: dict[str, GroundTruth]
    issues: LoadIssues
    video: bool = False
    frame_size: Size | None = None
    frame_count: int | None = None

    def get(self, key: str, size: Size | None = None) -> GroundTruth:
        """The record for an image or frame; one with no boxes when nothing is annotated there."""
        if key in self.truths:
            return self.truths[key]
        size = size or self.frame_size
        if size is None:
            raise ValueError(f"no annotations for {key!r} and its size is unknown: pass size")
        return GroundTruth.empty(key, size)

    def __len__(self) -> int:
        return len(self.truths)


class TruthBuilder:
    """Collects a format's boxes, cleaning and counting them; `build()` gives the `Annotations`."""

    def __init__(self, source: Path, fmt: str, labels: LabelMap, media: MediaInfo) -> None:
        self.source, self.media = Path(source), media
        self.issues = LoadIssues(source=str(source), format=fmt)
        self.labels = labels
        self._sizes: dict[str, Size] = {}
        self._rows: dict[str, list[tuple[float, float, float, float, int, int]]] = {}
        self._video_size: Size | None = None
        self._frame_count: int | None = None

    def declare_images(self, sizes: Mapping[str, Size] | None = None) -> None:
        """The images annotated, with their sizes (default: the caller's). Only those in the input are kept."""
        if sizes is None:
            if self.media.image_sizes is None:
                raise ValueError(f"{self.issues.format} annotations do not store image sizes: pass MediaInfo.images")
            sizes = self.media.image_sizes
        wanted = self.media.image_sizes
        for key, (width, height) in sizes.items():
            if wanted is not None and key not in wanted:
                continue
            if wanted is not None and tuple(wanted[key]) != (int(width), int(height)):
                raise SourceError(f"{self.source}: {key} is annotated as {width}x{height} "
                                  f"but the image is {wanted[key][0]}x{wanted[key][1]}")
            self._sizes[key] = (int(width), int(height))
            self._rows.setdefault(key, [])

    def declare_video(self, frame_size: Size | None = None, frame_count: int | None = None) -> None:
        """The annotations are for one video; the caller's frame count and size win over the file's."""
        given = self.media.frame_size
        if given is not None and frame_size is not None and tuple(given) != tuple(frame_size):
            raise SourceError(f"{self.source}: annotations are for {frame_size[0]}x{frame_size[1]} frames "
                              f"but the video is {given[0]}x{given[1]}")
        size = given or frame_size
        if size is None:
            raise SourceError(f"{self.source}: the annotations do not say the frame size; pass the video")
        self._video_size = (int(size[0]), int(size[1]))
        self._frame_count = self.media.frame_count if self.media.frame_count is not None else frame_count

    def declared_keys(self) -> list[str]:
        return list(self._sizes)

    def size_of(self, key: str) -> Size | None:
        """The image's or frame's size, or None when it is not in the input."""
        if self._video_size is None:
            return self._sizes.get(key)
        try:
            index = int(key)
        except ValueError:
            return None
        in_range = index >= 0 and (self._frame_count is None or index < self._frame_count)
        return self._video_size if in_range else None

    def add(self, key: str, xyxy: Sequence[float], class_name: object, track: int = -1) -> None:
        """One annotated box in pixel xyxy of the image or frame `key`."""
        label = self._label(class_name)
        if label is None:
            return
        size = self.size_of(key)
        if size is None:
            self.issues.beyond_input += 1
            return
        box = self._clip(xyxy, size)
        if box is not None:
            self._rows.setdefault(key, []).append((*box, int(label), int(track)))
            self.issues.boxes += 1

    def ignore(self, count: int = 1) -> None:
        self.issues.ignored_boxes += count

    def beyond_input(self, count: int = 1) -> None:
        self.issues.beyond_input += count

    def build(self) -> Annotations:
        self.issues.log_warnings()
        if self._video_size is None:
            truths = {key: self._truth(key, self._sizes[key]) for key in self._sizes}
        else:
            truths = {key: self._truth(key, self._video_size) for key in sorted(self._rows, key=int)}
        return Annotations(truths, self.issues, self._video_size is not None, self._video_size, self._frame_count)

    def _label(self, class_name: object) -> Label | None:
        known, label = self.labels.lookup(str(class_name))
        if not known:
            name = str(class_name)
            self.issues.unknown_classes[name] = self.issues.unknown_classes.get(name, 0) + 1
        elif label is None:
            self.issues.ignored_boxes += 1
        return label

    def _clip(self, xyxy: Sequence[float], size: Size) -> tuple[float, float, float, float] | None:
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        width, height = size
        clipped = (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
                   min(max(x2, 0.0), width), min(max(y2, 0.0), height))
        if not (clipped[2] > clipped[0] and clipped[3] > clipped[1]):
            self.issues.empty_boxes += 1
            return None
        if clipped != (x1, y1, x2, y2):
            self.issues.clipped_boxes += 1
        return clipped

    def _truth(self, key: str, size: Size) -> GroundTruth:
        rows = self._rows.get(key, [])
        if not rows:
            return GroundTruth.empty(key, size)
        table = np.array(rows, dtype=np.float64)
        return GroundTruth(key, table[:, :4].astype(np.float32), table[:, 4].astype(np.int64),
                           table[:, 5].astype(np.int64), size[0], size[1])


def read_text(path: Path) -> str:
    """A text annotation file, or SourceError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceError(f"annotations not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read annotations {path}: {exc}") from None


def read_mapping(path: Path, parse: Callable[[str], Any], errors: type[Exception], kind: str) -> dict:
    """A JSON or YAML file whose top level must be a mapping, or SourceError naming it."""
    try:
        data = parse(read_text(path))
    except errors as exc:
        raise SourceError(f"malformed {kind} in {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path}: expected a {kind} object at the top level")
    return data


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for each non-blank line."""
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if line.strip():
            yield number, line.strip()


def parse_numbers(path: Path, line_no: int, fields: Sequence[str]) -> list[float]:
    try:
        return [float(value) for value in fields]
    except ValueError:
        raise SourceError(f"{path}:{line_no}: expected numbers, found {' '.join(fields)!r}") from None
