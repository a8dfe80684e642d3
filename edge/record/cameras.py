"""The recordings folders of a car with several cameras, and what links them: the time of a trip.

Each camera records into a folder of its own (`cameras[N].record.directory`), with its own trips index,
signing chain and retention. The first camera of the config leads: its trips are the car's trips, and
the other cameras' footage of a trip is every finished segment of theirs that overlaps the trip's time
(`CarFolders.linked`). Times come from the sidecars the recorders wrote; a segment without a readable
sidecar counts from its name's start for one second, so it is still offered, never silently lost.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from edge.record.store import RecordingsFolder, StoredSegment, parse_utc, read_sidecar

_UNKNOWN_LENGTH = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class CameraFolder:
    name: str  # "" for a car with one camera
    folder: RecordingsFolder


@dataclass(frozen=True)
class LinkedSegment:
    camera: str
    stored: StoredSegment

    @property
    def id(self) -> str:
        return self.stored.video_path.stem


class CarFolders:
    """Every camera's folder, the lead (first) camera's first."""

    def __init__(self, cameras: list[CameraFolder]) -> None:
        if not cameras:
            raise ValueError("a car has at least one camera")
        self.cameras = cameras

    @classmethod
    def of(cls, directories: list[tuple[str, Path]]) -> CarFolders:
        return cls([CameraFolder(name, RecordingsFolder(path)) for name, path in directories])

    @property
    def lead(self) -> CameraFolder:
        return self.cameras[0]

    @property
    def others(self) -> list[CameraFolder]:
        return self.cameras[1:]

    def other(self, name: str) -> CameraFolder | None:
        """The camera of that name other than the lead, if the car has one."""
        return next((camera for camera in self.others if camera.name == name), None)

    def linked(self, start_utc: str, end_utc: str) -> list[LinkedSegment]:
        """The other cameras' finished segments that overlap [start, end] (a trip of the lead camera)."""
        start, end = parse_utc(start_utc), parse_utc(end_utc)
        found = []
        for camera in self.others:
            if not camera.folder.root.is_dir():
                continue
            for stored in camera.folder.segments():
                if stored.start_utc > end:
                    continue
                sidecar = read_sidecar(stored.sidecar_path)
                segment_end = (parse_utc(sidecar.end_utc) if sidecar and sidecar.end_utc
                               else stored.start_utc + _UNKNOWN_LENGTH)
                if segment_end >= start:
                    found.append(LinkedSegment(camera.name, stored))
        return sorted(found, key=lambda s: (s.camera, s.stored.start_utc))
