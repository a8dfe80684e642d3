"""Single-purpose public sets: WIDER FACE's ground-truth txt and CCPD's boxes in file names.

WIDER FACE (`wider_face_split/wider_face_val_bbx_gt.txt`): blocks of an image path, a box
count, then that many rows `x y w h blur expression illumination invalid occlusion pose`
(an image with 0 faces still has one all-zero row). Boxes flagged invalid are counted as
ignored, as WIDER's own evaluation ignores them. Every box is a face.

CCPD: each image's name holds its plate, fields split by '-': area, tilt, the bounding box
`x1&y1_x2&y2`, the four corners, the plate characters, brightness, blur. The annotations
are the images folder itself (every .jpg below it) or a split list such as
`splits/test.txt` (one relative path a line). A name with no '-' has no plate.
Neither stores the image size: the caller passes the input's sizes.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from edge.bench.truth import TruthBuilder, numbered_lines, parse_numbers
from edge.errors import SourceError

_WIDER_INVALID = 7  # column of the invalid flag in a WIDER box row


def read_wider(path: Path, builder: TruthBuilder) -> None:
    builder.declare_images()
    lines = list(numbered_lines(path))
    position = 0
    while position < len(lines):
        position = _read_wider_block(path, lines, position, builder)


def _read_wider_block(path: Path, lines: list[tuple[int, str]], start: int, builder: TruthBuilder) -> int:
    """Add one image's boxes; returns where the next block starts."""
    _, name = lines[start]
    count_line = lines[start + 1] if start + 1 < len(lines) else (lines[start][0] + 1, "")
    if not count_line[1].isdigit():
        raise SourceError(f"{path}:{count_line[0]}: expected the number of faces in {name}")
    count = int(count_line[1])
    rows = lines[start + 2:start + 2 + count]
    if len(rows) < count:
        raise SourceError(f"{path}: {name} should have {count} box rows; the file ends early")
    for line_no, line in rows:
        values = parse_numbers(path, line_no, line.split())
        if len(values) < 4:
            raise SourceError(f"{path}:{line_no}: expected 'x y w h ...', found {line!r}")
        if len(values) > _WIDER_INVALID and values[_WIDER_INVALID] == 1:
            builder.ignore()
            continue
        x, y, w, h = values[:4]
        builder.add(name, (x, y, x + w, y + h), "face")
    end = start + 2 + count
    if count == 0 and end < len(lines) and _all_zero(lines[end][1]):
        end += 1  # the placeholder row of an image without faces
    return end


def _all_zero(line: str) -> bool:
    try:
        return all(float(value) == 0 for value in line.split())
    except ValueError:
        return False


def read_ccpd(path: Path, builder: TruthBuilder) -> None:
    builder.declare_images()
    for key in _ccpd_names(path):
        box = ccpd_box(path, key)
        if box is not None:
            builder.add(key, box, "plate")


def _ccpd_names(path: Path) -> list[str]:
    if path.is_dir():
        return sorted(p.relative_to(path).as_posix() for p in path.rglob("*.jpg"))
    return [line for _, line in numbered_lines(path)]


def ccpd_box(path: Path, key: str) -> tuple[float, float, float, float] | None:
    """The plate's xyxy from a CCPD file name, or None for a name without fields (no plate)."""
    fields = PurePosixPath(key).stem.split("-")
    if len(fields) == 1:
        return None
    try:
        (x1, y1), (x2, y2) = (corner.split("&") for corner in fields[2].split("_"))
        return float(x1), float(y1), float(x2), float(y2)
    except (IndexError, ValueError):
        raise SourceError(f"{path}: {key}: not a CCPD name (its third '-' field must be x1&y1_x2&y2)") from None
