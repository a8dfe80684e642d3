"""What the web app reads and changes in the recordings folder: trips, segments by id, locks, exports, status.

A segment's id is its file stem (`dashcam_2026-12-05_21-16-55Z`), checked against the
name pattern and then looked up among the finished segments the folder lists (regular
files only): a request never becomes a path, so `..`, a partial or a symlink cannot be
reached. Locks follow `dashcam lock`'s rule: locked footage is never deleted
automatically; unlocking puts it back into the loop. Both are signed as amendments of the
segment's manifest when this machine holds the device key.
"""
from __future__ import annotations

import datetime as dt
import io
import logging
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge.config import Config
from edge.errors import UserError
from edge.evidence.chain import ManifestFile, amend, manifest_path, needs_amendment
from edge.evidence.keys import DeviceKey
from edge.evidence.records import RecordError
from edge.evidence.seal import seal_entries
from edge.record.atomic import is_regular_file
from edge.record.cameras import CameraFolder, CarFolders, LinkedSegment
from edge.record.gpx import build_gpx
from edge.record.index import SegmentRow, TripRow, TripsIndex
from edge.record.lease import running_recorder, signal_lock
from edge.record.sidecar import Sidecar
from edge.record.store import SEGMENT_STEM, UPLOAD_QUEUE_NAME, RecordingsFolder, StoredSegment, read_sidecar
from edge.upload.queue import UploadQueue

log = logging.getLogger(__name__)

TRIPS_PER_PAGE = 20
_ZIP_CHUNK = 1 << 20


class NotFound(LookupError):
    """No such trip or segment (the page says 404)."""


@dataclass(frozen=True)
class SegmentView:
    stored: StoredSegment
    sidecar: Sidecar | None
    signed: bool
    camera: str = ""  # another camera of the car than the lead one ("" = the lead)

    @property
    def id(self) -> str:
        return self.stored.video_path.stem

    @property
    def query(self) -> str:
        """What the segment's links carry to reach it again: the camera, when not the lead one."""
        return f"?camera={self.camera}" if self.camera else ""


@dataclass(frozen=True)
class TripView:
    trip: TripRow
    segments: list[SegmentRow]
    track: list[tuple[float, float]]  # (lat, lon), already rounded and zone-filtered by the recorder
    linked: list[LinkedSegment] = field(default_factory=list)  # the other cameras' footage of the trip's time


class Footage:
    """The lead camera's folder (`folder`: its trips are the car's), and the car's other cameras' folders."""

    def __init__(self, folder: RecordingsFolder, config: Config, key: DeviceKey | None,
                 car: CarFolders | None = None) -> None:
        self.folder = folder
        self.car = car or CarFolders([CameraFolder("", folder)])
        self._config = config
        self._key = key

    # ---- reading -----------------------------------------------------------------------------------------------

    def _index(self) -> TripsIndex:
        # Read-only, in memory: the recorder owns the file, and a page must never write the card.
        return TripsIndex.open(self.folder, self._config.record.trip_gap_seconds, writable=False)

    def trips(self, page: int) -> tuple[list[TripRow], int]:
        """One page of trips, newest first, and the number of pages."""
        index = self._index()
        try:
            trips = sorted(index.trips(), key=lambda t: t.start_utc, reverse=True)
        finally:
            index.close()
        pages = max(1, -(-len(trips) // TRIPS_PER_PAGE))
        start = (min(max(page, 1), pages) - 1) * TRIPS_PER_PAGE
        return trips[start:start + TRIPS_PER_PAGE], pages

    def trip(self, trip_id: int) -> TripView:
        index = self._index()
        try:
            trip = next((t for t in index.trips() if t.id == trip_id), None)
            segments = index.segments(trip_id=trip_id) if trip else []
        finally:
            index.close()
        if trip is None:
            raise NotFound(f"no trip {trip_id}")
        track: list[tuple[float, float]] = []
        for found in self.folder.find_all([row.name for row in segments]):
            sidecar = read_sidecar(found.sidecar_path)
            if sidecar and sidecar.location:
                track += sidecar.location.points()
        return TripView(trip, segments, track, self.car.linked(trip.start_utc, trip.end_utc))

    def segment(self, segment_id: str, camera: str = "") -> SegmentView:
        """A finished segment of the lead camera, or of the car's camera named `camera` (a known name only)."""
        folder = self._folder_of(camera)
        if not SEGMENT_STEM.fullmatch(segment_id):
            raise NotFound(f"no segment {segment_id!r}")
        stored = folder.find(segment_id)
        if stored is None or stored.video_path.stem != segment_id:
            raise NotFound(f"no segment {segment_id!r}")
        return SegmentView(stored, read_sidecar(stored.sidecar_path),
                           is_regular_file(manifest_path(stored.video_path)), camera)

    def _folder_of(self, camera: str) -> RecordingsFolder:
        if not camera:
            return self.folder
        found = self.car.other(camera)
        if found is None:
            raise NotFound(f"no camera {camera!r}")
        return found.folder

    # ---- locks -------------------------------------------------------------------------------------------------

    def set_locked(self, segment_id: str, locked: bool, camera: str = "") -> SegmentView:
        view = self.segment(segment_id, camera)
        folder = self._folder_of(camera)
        now = dt.datetime.now(dt.timezone.utc)
        stored = folder.lock(view.stored, now) if locked else folder.unlock(view.stored)
        self._amend(stored)
        log.warning("%s %s from the web app", "locked" if locked else "unlocked", stored.name)
        return self.segment(stored.video_path.stem, camera)

    def set_trip_locked(self, trip_id: int, locked: bool) -> int:
        view = self.trip(trip_id)
        changed = 0
        for row in view.segments:
            if row.locked != locked:
                self.set_locked(Path(row.name).stem, locked)
                changed += 1
        return changed

    def _amend(self, stored: StoredSegment) -> None:
        """Sign the lock state into the manifest (the recorder's signer does the same at its next start)."""
        path = manifest_path(stored.video_path)
        if self._key is None or not is_regular_file(path):
            return
        try:
            current = ManifestFile.read(path)
            if current.manifest.is_signed_by(self._key.public) and needs_amendment(self._key, stored, current):
                amend(self._key, stored, current)
        except (OSError, RecordError, UserError) as exc:
            log.warning("could not sign the new lock state of %s (%s): the recorder does at its next start",
                        stored.name, exc)

    def lock_incident(self) -> int:
        """What `dashcam lock` does: the running recorder keeps the current segment and the seconds around it."""
        return signal_lock(self.folder)

    # ---- export ------------------------------------------------------------------------------------------------

    def export_zip(self, trip_id: int) -> tuple[str, Iterator[bytes]]:
        """A trip as one zip (clips, sidecars, GPX, and the seal `dashcam verify` checks), streamed as written."""
        view = self.trip(trip_id)
        label = f"trip-{trip_id}"
        segments = self.folder.find_all([row.name for row in view.segments])
        return f"{label}.zip", self._zip_chunks(label, segments)

    def _zip_chunks(self, label: str, segments: list[StoredSegment]) -> Iterator[bytes]:
        sink = _Chunks()
        sidecars = [s.sidecar_path for s in segments if is_regular_file(s.sidecar_path)]
        gpx, _points = build_gpx(sidecars)
        others = {f"{label}.gpx": gpx}
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
            for segment in segments:
                for path in (segment.video_path, segment.sidecar_path):
                    if is_regular_file(path):
                        with path.open("rb") as source, archive.open(f"{label}/{path.name}", "w") as target:
                            while chunk := source.read(_ZIP_CHUNK):
                                target.write(chunk)
                                yield from sink.take()
            entries = list(others.items())
            if self._key is not None:
                entries += seal_entries(label, segments, others, self.folder, self._key).entries
            for name, data in entries:
                archive.writestr(f"{label}/{name}", data)
                yield from sink.take()
        yield from sink.take()

    # ---- status ------------------------------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        usage = shutil.disk_usage(self.folder.root)
        segments = self.folder.segments()
        uploads = None
        if is_regular_file(self.folder.root / UPLOAD_QUEUE_NAME):
            queue = UploadQueue.open(self.folder.root)
            try:
                uploads = queue.status()
            finally:
                queue.close()
        return {
            "uploads": uploads,
            "recording": running_recorder(self.folder) is not None,
            "free_bytes": usage.free,
            "disk_bytes": usage.total,
            "budget_bytes": self._config.record.max_bytes,
            "footage_bytes": sum(s.size_bytes for s in segments),
            "locked_bytes": sum(s.size_bytes for s in segments if s.locked),
            "segments": len(segments),
        }


class _Chunks(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken out as they come (zipfile then writes data
    descriptors instead of seeking back)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # any buffer zipfile hands over
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> Iterator[bytes]:
        parts, self._parts = self._parts, []
        if parts:
            yield b"".join(parts)

