"""`dashcam export`: copy a trip's or a segment's anonymized clips, their sidecars and a GPX out of the folder.

The copies are made with the same partial-fsync-rename discipline as recording, so a
USB stick pulled mid-export holds no half file under a final name. Only finished
segments are exported, and only regular files found in the recordings folder and its
`locked/` (never through a symlink, see `RecordingsFolder.segments`); the footage itself
is already anonymized, nothing is re-encoded.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SourceError, StorageError
from edge.record.atomic import copy_atomic, is_regular_file, make_output_folder, write_atomic
from edge.record.gpx import build_gpx
from edge.record.index import TripsIndex
from edge.record.store import RecordingsFolder, StoredSegment

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    label: str
    files: list[Path] = field(default_factory=list)
    track_points: int = 0
    segments: list[StoredSegment] = field(default_factory=list)


def resolve(target: str, folder: RecordingsFolder, index: TripsIndex) -> tuple[str, list[StoredSegment]]:
    """A trip id (as `dashcam trips` shows it, e.g. 3 or trip-3) or a segment name, stem or path."""
    trip_id = target.removeprefix("trip-")
    if trip_id.isdigit():
        # SQLite integers are 64-bit: a longer number is no trip, not an OverflowError.
        rows = index.segments(trip_id=int(trip_id)) if int(trip_id) < 2**63 else []
        if not rows:
            raise SourceError(f"no trip {trip_id} in {folder.root} (see `dashcam trips`)")
        segments = folder.find_all([row.name for row in rows])
        return f"trip-{trip_id}", segments
    segment = folder.find(Path(target).name)
    if segment is None:
        raise SourceError(f"no segment or trip named {target!r} in {folder.root} (see `dashcam trips --segments`)")
    return segment.video_path.stem, [segment]


def export(target: str, output: Path, folder: RecordingsFolder, index: TripsIndex) -> ExportResult:
    label, segments = resolve(target, folder, index)
    return copy_segments(label, segments, output, folder)


def copy_segments(label: str, segments: list[StoredSegment], output: Path, folder: RecordingsFolder) -> ExportResult:
    """Copy finished segments of `folder` with their sidecars, and one GPX of their tracks named `label`."""
    _check_output(output, folder)
    result = ExportResult(label, segments=segments)
    for segment in segments:
        result.files.append(copy_atomic(segment.video_path, output / segment.name))
        if is_regular_file(segment.sidecar_path):
            result.files.append(copy_atomic(segment.sidecar_path, output / segment.sidecar_path.name))
    sidecars = [s.sidecar_path for s in segments if is_regular_file(s.sidecar_path)]
    document, result.track_points = build_gpx(sidecars)
    result.files.append(write_atomic(output / f"{label}.gpx", document))
    log.info("exported %s: %d segments to %s", label, len(segments), output)
    return result


def _check_output(output: Path, folder: RecordingsFolder) -> None:
    """Copies inside the recordings folder would be taken for segments and looped away."""
    make_output_folder(output, "export folder")
    resolved = output.resolve()
    if resolved in (folder.root.resolve(), folder.locked_dir.resolve()):
        raise StorageError(f"refusing to export into the recordings folder itself ({output}): choose another --output")
