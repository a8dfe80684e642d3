"""MOTChallenge ground truth: `gt.txt` rows `frame,id,x,y,w,h,conf,class,visibility`.

Frames are 1-based in the file and become 0-based keys. `conf` 0 marks a row to ignore
(MOT16/17 convention) and is counted as ignored. Classes are numbers, so the caller maps
them (e.g. {"1": "face", "2": "plate"}) or forces one label. `x, y` are used as written
(MOTChallenge counts pixels from 1: at most a one-pixel shift). Frame size and count come
from `seqinfo.ini` (imWidth, imHeight, seqLength) beside `gt/` when present, else the caller.
"""
from __future__ import annotations

import configparser
from pathlib import Path

from edge.bench.truth import Size, TruthBuilder, numbered_lines, parse_numbers
from edge.errors import SourceError

_FIELDS = "frame,id,x,y,w,h,conf,class,visibility"


def gt_file(path: Path) -> Path:
    """A sequence folder (with gt/gt.txt) or the txt itself."""
    return path / "gt" / "gt.txt" if path.is_dir() else path


def read_mot(path: Path, builder: TruthBuilder) -> None:
    path = gt_file(path)
    size, count = _seqinfo(path)
    builder.declare_video(size, count)
    if not builder.labels.maps_numbers():
        raise SourceError(f"{path}: MOT classes are numbers; give a class mapping such as 1=face")
    for line_no, line in numbered_lines(path):
        fields = line.split(",")
        if len(fields) != 9:
            raise SourceError(f"{path}:{line_no}: expected 9 comma-separated fields ({_FIELDS}), "
                              f"found {len(fields)}")
        frame, track, x, y, w, h, conf, klass, _visibility = parse_numbers(path, line_no, fields)
        if conf == 0:
            builder.ignore()
            continue
        builder.add(str(int(frame) - 1), (x, y, x + w, y + h), str(int(klass)), int(track))


def _seqinfo(gt: Path) -> tuple[Size | None, int | None]:
    for folder in (gt.parent.parent, gt.parent):
        ini = folder / "seqinfo.ini"
        if ini.is_file():
            return _read_seqinfo(ini)
    return None, None


def _read_seqinfo(ini: Path) -> tuple[Size | None, int | None]:
    parser = configparser.ConfigParser()
    try:
        parser.read(ini, encoding="utf-8")
        section = parser["Sequence"]
        return (int(section["imWidth"]), int(section["imHeight"])), int(section.get("seqLength", "0")) or None
    except (configparser.Error, KeyError, ValueError) as exc:
        raise SourceError(f"{ini}: malformed seqinfo.ini ({type(exc).__name__}: {exc})") from None
