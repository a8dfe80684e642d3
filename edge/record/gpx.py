"""GPX 1.1 export of the stored (already rounded, zone-filtered) tracks in segment sidecars."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edge.errors import SourceError
from edge.record.atomic import write_atomic
from edge.record.store import read_sidecar

GPX_NS = "http://www.topografix.com/GPX/1/1"


def sidecars_for(target: Path) -> list[Path]:
    """The sidecars of one segment (its .mp4 or .json) or of every segment in a folder, oldest first."""
    if target.is_dir():
        found = sorted(p for p in target.glob("dashcam_*.json"))
        if not found:
            raise SourceError(f"no segment sidecars (dashcam_*.json) in {target}")
        return found
    sidecar = target.with_suffix(".json")
    if not sidecar.is_file():
        raise SourceError(f"no sidecar {sidecar.name} for {target}")
    return [sidecar]


def _track_of(sidecar: Path) -> tuple[str, list[dict]]:
    data = read_sidecar(sidecar)  # regular files only, size-capped
    if data is None:
        raise SourceError(f"cannot read sidecar {sidecar}: missing, not a regular file, or not a sidecar")
    # No location when recording ran without GPS: an empty track, not an error.
    return data.video or sidecar.stem, [dict(p) for p in data.location.track] if data.location else []


def build_gpx(sidecars: list[Path]) -> tuple[bytes, int]:
    """GPX document with one track segment per video segment; returns the bytes and the point count."""
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": "privacy-dashcam"})
    track = ET.SubElement(root, f"{{{GPX_NS}}}trk")
    ET.SubElement(track, f"{{{GPX_NS}}}name").text = "dashcam"
    points = 0
    for sidecar in sidecars:
        name, stored = _track_of(sidecar)
        segment = ET.SubElement(track, f"{{{GPX_NS}}}trkseg")
        for point in stored:
            node = ET.SubElement(segment, f"{{{GPX_NS}}}trkpt", {"lat": repr(point["lat"]), "lon": repr(point["lon"])})
            if point.get("altitude_m") is not None:
                ET.SubElement(node, f"{{{GPX_NS}}}ele").text = str(point["altitude_m"])
            if point.get("t_utc"):
                ET.SubElement(node, f"{{{GPX_NS}}}time").text = point["t_utc"]
            ET.SubElement(node, f"{{{GPX_NS}}}src").text = name
            points += 1
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), points


def export_gpx(target: Path, output: Path | None) -> tuple[Path, int]:
    sidecars = sidecars_for(target)
    if output is None:
        output = target / "track.gpx" if target.is_dir() else target.with_suffix(".gpx")
    document, points = build_gpx(sidecars)
    return write_atomic(output, document), points
