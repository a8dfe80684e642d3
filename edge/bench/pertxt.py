"""One txt file per image: YOLO label folders, openalpr benchmark files, UFPR-ALPR files.

A txt file belongs to the image with the same relative path less its suffix
(`labels/paris/x.txt` <-> `paris/x.png` of the input), so flat and nested layouts both
work. Boxes in a txt file whose image is not in the input are counted as beyond the
input. None of these formats stores the image size: the caller passes the input's sizes.

- YOLO: rows `class cx cy w h`, normalised 0..1 (polygon rows `class x1 y1 x2 y2 ...` are
  reduced to their bounding box). Class names come from the caller, else `classes.txt`
  or a `data.yaml` (`names`, list or dict) in the labels folder or up to two folders
  above; without names the class number itself is the name (map e.g. "0" -> face).
  A `data.yaml` can also be given instead of the folder: its `val` images folder, with
  `images` replaced by `labels` as Ultralytics does, is where the labels are read.
- openalpr benchmarks (`endtoend/<country>/*.txt`): rows `image x y w h plate_text`, tab separated.
- UFPR-ALPR: lines `position_plate: x y w h` (the other lines describe the vehicle and characters).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import yaml

from edge.bench.truth import TruthBuilder, numbered_lines, parse_numbers, read_mapping
from edge.errors import SourceError

_NOT_LABELS = frozenset({"classes.txt", "README.txt"})


def read_yolo(path: Path, builder: TruthBuilder, class_names: Sequence[str] | None = None) -> None:
    labels_dir, found_names = yolo_layout(path)
    names = list(class_names) if class_names is not None else found_names
    if names is None and not builder.labels.maps_numbers():
        raise SourceError(f"{labels_dir}: YOLO classes are numbers and no classes.txt or data.yaml names "
                          "them; give class names or a mapping such as 0=face")
    builder.declare_images()
    for txt, key in per_image_files(labels_dir, builder):
        size = builder.size_of(key)
        if size is None:  # declared keys all have a size; nothing to scale by otherwise
            continue
        width, height = size
        for line_no, line in numbered_lines(txt):
            klass, (x1, y1, x2, y2) = _yolo_row(txt, line_no, line.split())
            name = names[klass] if names is not None and 0 <= klass < len(names) else str(klass)
            builder.add(key, (x1 * width, y1 * height, x2 * width, y2 * height), name)


def read_openalpr(path: Path, builder: TruthBuilder) -> None:
    builder.declare_images()
    for txt, key in per_image_files(path, builder):
        for line_no, line in numbered_lines(txt):
            fields = line.split(None, 5)
            if len(fields) < 5:
                raise SourceError(f"{txt}:{line_no}: expected 'image x y w h plate', found {line!r}")
            x, y, w, h = parse_numbers(txt, line_no, fields[1:5])
            builder.add(key, (x, y, x + w, y + h), "plate")


def read_ufpr(path: Path, builder: TruthBuilder) -> None:
    builder.declare_images()
    for txt, key in per_image_files(path, builder):
        rows = [(n, line.split(":", 1)[1].split()) for n, line in numbered_lines(txt)
                if line.startswith("position_plate:")]
        if not rows:
            raise SourceError(f"{txt}: no 'position_plate: x y w h' line (not UFPR-ALPR?)")
        for line_no, fields in rows:
            if len(fields) != 4:
                raise SourceError(f"{txt}:{line_no}: expected 'position_plate: x y w h'")
            x, y, w, h = parse_numbers(txt, line_no, fields)
            builder.add(key, (x, y, x + w, y + h), "plate")


def per_image_files(folder: Path, builder: TruthBuilder) -> Iterator[tuple[Path, str]]:
    """(txt file, image key) for each txt file under `folder` whose image is in the input."""
    if not folder.is_dir():
        raise SourceError(f"annotations folder not found: {folder}")
    by_stem = {str(PurePosixPath(key).with_suffix("")): key for key in builder.declared_keys()}
    for txt in sorted(folder.rglob("*.txt")):
        if txt.name in _NOT_LABELS:
            continue
        key = by_stem.get(txt.relative_to(folder).with_suffix("").as_posix())
        if key is None:
            builder.beyond_input(sum(1 for _ in numbered_lines(txt)))
            continue
        yield txt, key


def _yolo_row(txt: Path, line_no: int, fields: list[str]) -> tuple[int, tuple[float, float, float, float]]:
    values = parse_numbers(txt, line_no, fields)
    if len(values) == 5:
        _, cx, cy, w, h = values
        return int(values[0]), (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    if len(values) >= 7 and len(values) % 2 == 1:  # a segmentation polygon: its bounding box
        xs, ys = values[1::2], values[2::2]
        return int(values[0]), (min(xs), min(ys), max(xs), max(ys))
    raise SourceError(f"{txt}:{line_no}: expected 5 fields (class cx cy w h) or a polygon, found {len(values)}")


def yolo_layout(path: Path) -> tuple[Path, list[str] | None]:
    """(labels folder, class names if a classes.txt or data.yaml gives them)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        data = _read_yaml(path)
        return _labels_from_yaml(path, data), _yaml_names(path, data)
    if not path.is_dir():
        raise SourceError(f"YOLO annotations must be a labels folder or a data.yaml: {path}")
    for folder in (path, path.parent, path.parent.parent):
        if (folder / "classes.txt").is_file():
            return path, [line for _, line in numbered_lines(folder / "classes.txt")]
        for name in ("data.yaml", "data.yml"):
            if (folder / name).is_file():
                return path, _yaml_names(folder / name, _read_yaml(folder / name))
    return path, None


def _read_yaml(path: Path) -> dict:
    return read_mapping(path, yaml.safe_load, yaml.YAMLError, "YAML")


def _yaml_names(path: Path, data: dict) -> list[str] | None:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            return [str(names[i]) for i in sorted(int(k) for k in names)]
        except (KeyError, ValueError):
            raise SourceError(f"{path}: 'names' keys must be 0, 1, 2, ...") from None
    return [str(n) for n in names] if isinstance(names, list) else None


def _labels_from_yaml(path: Path, data: dict) -> Path:
    val = data.get("val")
    if not isinstance(val, str):
        raise SourceError(f"{path}: no 'val' images folder; pass the labels folder instead")
    images = path.parent / str(data.get("path", "")) / val
    parts = list(images.parts)
    if "images" in parts:
        parts[len(parts) - 1 - parts[::-1].index("images")] = "labels"
    labels = Path(*parts)
    if not labels.is_dir():
        raise SourceError(f"{path}: labels folder {labels} (from 'val') not found; pass the labels folder instead")
    return labels
