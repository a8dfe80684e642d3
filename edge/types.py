"""Central value types that travel through the pipeline.

`Detections` holds boxes as parallel numpy arrays and validates them on creation.
`Frame` is a captured, unredacted image. What storage accepts, `RedactedFrame`, lives in
`edge.redact` with the seal its constructor demands, so that nothing here can make one.
"""
from __future__ import annotations

import datetime as dt
import enum
import typing
from dataclasses import dataclass

import numpy as np


class Label(enum.IntEnum):
    """What a detection is; the redaction shape depends on it."""

    FACE = 0
    PLATE = 1


@dataclass(frozen=True)
class Detections:
    """Boxes in pixel `xyxy` of the frame they were found in; empty arrays mean nothing found.

    `track_id` says which tracked object each box belongs to (the tracker's cover can hold
    several boxes for one object); -1 is a box of its own. None gives all -1.
    """

    xyxy: np.ndarray
    score: np.ndarray
    label: np.ndarray
    track_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        label = np.asarray(self.label, dtype=np.int64).reshape(-1)
        track_id = (np.full(len(xyxy), -1, np.int64) if self.track_id is None
                    else np.asarray(self.track_id, dtype=np.int64).reshape(-1))
        if not (len(xyxy) == len(score) == len(label) == len(track_id)):
            raise ValueError(
                f"Detections fields differ in length: xyxy {len(xyxy)}, score {len(score)}, label {len(label)}, "
                f"track_id {len(track_id)}"
            )
        if not np.isfinite(xyxy).all() or not np.isfinite(score).all():
            raise ValueError("Detections contain NaN or infinite values")
        if (xyxy[:, 2] < xyxy[:, 0]).any() or (xyxy[:, 3] < xyxy[:, 1]).any():
            raise ValueError("Detections contain boxes with x2 < x1 or y2 < y1")
        known = np.isin(label, [int(member) for member in Label])
        if not known.all():
            raise ValueError(f"Detections contain unknown labels {sorted(set(label[~known].tolist()))}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "track_id", track_id)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def ids(self) -> np.ndarray:
        """`track_id` as an array (construction turns None into all -1)."""
        return typing.cast(np.ndarray, self.track_id)

    def __getitem__(self, mask: np.ndarray) -> Detections:
        """Select rows with a boolean mask or an index array."""
        return Detections(self.xyxy[mask], self.score[mask], self.label[mask], self.ids[mask])

    def count(self, label: Label) -> int:
        """Boxes of a label."""
        return int((self.label == int(label)).sum())

    def objects(self, label: Label) -> int:
        """Objects of a label: boxes of one tracked object count once."""
        of_label = self.label == int(label)
        ids = self.ids[of_label]
        return int((ids < 0).sum()) + len(np.unique(ids[ids >= 0]))

    @staticmethod
    def merge(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        return Detections(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.label for p in parts]),
            np.concatenate([p.track_id for p in parts]),
        )


@dataclass(frozen=True)
class DetectionFailure:
    """A keyframe's verdict when its detection cannot be trusted: the frames it brackets are blurred whole or
    dropped (fail closed), and counted."""

    reason: str
    stale: bool = False  # no detector error: the newest detection is too old to trust (live overload)
    timed_out: bool = False  # the deadline passed, or an earlier overrun still holds the detector


Verdict = Detections | DetectionFailure  # what a keyframe's detection says


@dataclass(frozen=True)
class GpsFix:
    """The receiver's latest position, assembled by edge.gps from NMEA (or gpsd) reports.

    `t_mono_ns` is when the report completing it arrived, on this machine's monotonic
    clock, so staleness never depends on the wall clock. Coordinates are personal data:
    never log them above DEBUG.
    """

    t_utc: dt.datetime | None
    lat: float
    lon: float
    valid: bool
    t_mono_ns: int
    speed_mps: float | None = None
    course_deg: float | None = None
    altitude_m: float | None = None
    fix_quality: int | None = None
    satellites: int | None = None
    hdop: float | None = None


@dataclass
class Frame:
    """One captured image, unredacted: it must never leave the process before `redact()`.

    `t_media_ns` is the frame's time on its source's own timeline: for a video file the
    decoded timestamp, for a camera None (then capture time, `t_mono_ns`, is the timeline).
    Stored timestamps and the tracker's gap bound are measured on `timeline_ns`.
    """

    image_bgr: np.ndarray
    index: int
    t_mono_ns: int
    t_utc: dt.datetime
    fix: GpsFix | None = None
    t_media_ns: int | None = None

    @property
    def timeline_ns(self) -> int:
        return self.t_mono_ns if self.t_media_ns is None else self.t_media_ns


@dataclass(frozen=True)
class RedactionCounts:
    """What `redact()` did to one frame."""

    faces: int = 0
    plates: int = 0
    whole_frame: bool = False
