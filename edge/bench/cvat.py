"""CVAT XML exports: "CVAT for video 1.1" (tracks) and "CVAT for images 1.1" (boxes per image).

Video: each `<track id label>` holds `<box frame xtl ytl xbr ybr outside occluded keyframe>`
elements; `outside="1"` means the object is absent from that frame on. The "for video"
export lists every frame of a track, but files saved from keyframes only have gaps: a gap
between two visible boxes is filled by linear interpolation of the corners (as CVAT
itself interpolates), a gap before an `outside` box keeps the last box, and nothing is
extrapolated after a track's last box. Occluded boxes count like any other: an occluded
face may still be recognisable. Shapes other than boxes (polygons, points) are counted
as ignored. Frame size and count come from `<meta>` (`original_size`, `size`) unless the
caller gives them.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from edge.bench.truth import Size, TruthBuilder
from edge.errors import SourceError

_CORNERS = ("xtl", "ytl", "xbr", "ybr")


class Keyframe(NamedTuple):
    frame: int
    xyxy: tuple[float, ...]
    outside: bool


def read_cvat(path: Path, builder: TruthBuilder, expect: str | None = None) -> None:
    """Either CVAT export, told apart by content; `expect` ('video' or 'images') checks which it is."""
    root = _parse(path)
    kind = "images" if root.find("image") is not None else "video"
    if expect is not None and expect != kind:
        raise SourceError(f"{path}: this is a CVAT for {kind} export, not CVAT for {expect}")
    if kind == "images":
        _read_images(path, root, builder)
    else:
        _read_video(path, root, builder)


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except FileNotFoundError:
        raise SourceError(f"annotations not found: {path}") from None
    except ET.ParseError as exc:
        raise SourceError(f"malformed XML in {path}: {exc}") from None
    except OSError as exc:
        raise SourceError(f"cannot read annotations {path}: {exc}") from None


def _read_images(path: Path, root: ET.Element, builder: TruthBuilder) -> None:
    images = root.findall("image")
    builder.declare_images({image.get("name", ""): _size(path, image, f"image {image.get('name')}")
                            for image in images})
    for image in images:
        for shape in image:
            if shape.tag == "box":
                where = f"image {image.get('name')}"
                builder.add(image.get("name", ""), _floats(path, shape, _CORNERS, where), shape.get("label", ""))
            else:
                builder.ignore()


def _read_video(path: Path, root: ET.Element, builder: TruthBuilder) -> None:
    original = root.find("meta//original_size")
    size = _size(path, original, "meta/original_size") if original is not None else None
    count = root.findtext("meta/task/size") or root.findtext("meta/job/size")
    builder.declare_video(size, int(count) if count and count.strip().isdigit() else None)
    for track in root.findall("track"):
        _read_track(path, track, builder)


def _read_track(path: Path, track: ET.Element, builder: TruthBuilder) -> None:
    track_id = int(_floats(path, track, ("id",), "track")[0])
    where = f"track {track_id}"
    keyframes = []
    for shape in track:
        if shape.tag != "box":
            builder.ignore()
            continue
        frame = int(_floats(path, shape, ("frame",), where)[0])
        keyframes.append(Keyframe(frame, _floats(path, shape, _CORNERS, f"{where} frame {frame}"),
                                  shape.get("outside", "0") == "1"))
    for frame, xyxy, interpolated in expand_track(keyframes):
        builder.issues.interpolated_boxes += interpolated
        builder.add(str(frame), xyxy, track.get("label", ""), track_id)


def expand_track(keyframes: list[Keyframe]) -> Iterator[tuple[int, tuple[float, ...], bool]]:
    """(frame, xyxy, interpolated) for every frame a track is visible, filling gaps between keyframes."""
    ordered = sorted(keyframes, key=lambda k: k.frame)
    for current, following in zip(ordered, ordered[1:] + [None]):
        if current.outside:
            continue
        yield current.frame, current.xyxy, False
        if following is None:
            continue
        span = following.frame - current.frame
        for frame in range(current.frame + 1, following.frame):
            if following.outside:
                yield frame, current.xyxy, True
            else:
                t = (frame - current.frame) / span
                yield frame, tuple(a + t * (b - a) for a, b in zip(current.xyxy, following.xyxy)), True


def _size(path: Path, element: ET.Element, where: str) -> Size:
    if element.find("width") is not None:  # <original_size><width>..</width>
        values = [element.findtext("width", ""), element.findtext("height", "")]
    else:
        values = [element.get("width", ""), element.get("height", "")]
    try:
        return int(values[0]), int(values[1])
    except ValueError:
        raise SourceError(f"{path}: {where}: width and height missing or not whole numbers") from None


def _floats(path: Path, element: ET.Element, names: tuple[str, ...], where: str) -> tuple[float, ...]:
    try:
        return tuple(float(element.get(name, "")) for name in names)
    except ValueError:
        raise SourceError(f"{path}: {where}: <{element.tag}> needs numeric {', '.join(names)}") from None
