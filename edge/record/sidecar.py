"""The sidecar: one typed, versioned record per segment (`X.json` beside `X.mp4`).

Written by the recorder (and as an `in_progress` snapshot while the segment is written)
and by recovery; read by the trips index, recovery, GPX export and anyone who subscribes
to finished segments. `Sidecar.to_json` and `Sidecar.from_json` are the only code that
knows the JSON layout.

Schema versions:
- 1 (no `schema_version` key): written before 2026-12-05. `duration_s` may be missing; it
  is then frame count / fps, which is too short where frames were dropped.
- 2: adds `schema_version`; otherwise the same keys.
- 3: adds `camera`, the name of the camera in a car with several (`cameras:` in the config); absent for one.
Keys this version does not know are kept in `extra` and written back, so a sidecar from a
newer dashcam is not stripped when an older one locks it.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 3


class SidecarError(ValueError):
    """A sidecar whose JSON does not have the expected shape."""


@dataclass(frozen=True)
class RedactionCounts:
    faces: int = 0
    plates: int = 0
    whole_frame_redacted_frames: int = 0
    dropped_frames: int = 0


@dataclass(frozen=True)
class LocationSummary:
    """The stored track: already rounded to `precision_decimals` and zone-filtered by the recorder."""

    precision_decimals: int
    frames_with_location: int = 0
    track: tuple[Mapping[str, Any], ...] = ()

    def points(self) -> list[tuple[float, float]]:
        """(lat, lon) of every track point that has both."""
        return [(p["lat"], p["lon"]) for p in self.track if p.get("lat") is not None and p.get("lon") is not None]


@dataclass(frozen=True)
class Sidecar:
    video: str
    start_utc: str | None = None
    end_utc: str | None = None
    frame_count: int = 0
    duration_s: float = 0.0  # first frame to last plus one frame: the time the segment spans
    fps: float | None = None
    fps_fraction: str | None = None
    width: int = 0
    height: int = 0
    codec: str = "unknown"
    source: str | None = None
    camera: str | None = None  # which of the car's cameras (`cameras:`); None with one camera
    models: Mapping[str, str] = field(default_factory=dict)
    redaction: RedactionCounts = RedactionCounts()
    software: str | None = None
    location: LocationSummary | None = None
    locked: bool = False
    locked_at_utc: str | None = None
    recovered: bool = False
    recovered_note: str | None = None
    gap_before_s: float | None = None
    in_progress: bool = False  # a snapshot of the segment being written
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Sidecar:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "video": self.video,
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "frame_count": self.frame_count,
            "duration_s": self.duration_s,
            "fps": self.fps,
            "fps_fraction": self.fps_fraction,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "source": self.source,
            "models": dict(self.models),
            "redaction": dataclasses.asdict(self.redaction),
            "software": self.software,
            "location": None if self.location is None else {
                "precision_decimals": self.location.precision_decimals,
                "frames_with_location": self.location.frames_with_location,
                "track": [dict(p) for p in self.location.track],
            },
            "locked": self.locked,
            "recovered": self.recovered,
        }
        optional = {"camera": self.camera, "locked_at_utc": self.locked_at_utc, "gap_before_s": self.gap_before_s,
                    "recovered_note": self.recovered_note, "in_progress": self.in_progress or None}
        data.update({key: value for key, value in optional.items() if value is not None})
        return {**self.extra, **data}

    @classmethod
    def from_json(cls, data: Any) -> Sidecar:
        """Any schema version this code knows; SidecarError when the shape is wrong."""
        if not isinstance(data, dict):
            raise SidecarError("a sidecar is a JSON object")
        version = _int(data, "schema_version", default=1)  # a newer one: what this code knows, the rest in `extra`
        frames = _int(data, "frame_count")
        fps = _float(data, "fps")
        duration = _float(data, "duration_s")
        if duration is None:  # version 1 before duration_s
            duration = frames / fps if fps else 0.0
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "schema_version"}
        return cls(
            video=_text(data, "video") or "",
            start_utc=_text(data, "start_utc"),
            end_utc=_text(data, "end_utc"),
            frame_count=frames,
            duration_s=duration,
            fps=fps,
            fps_fraction=_text(data, "fps_fraction"),
            width=_int(data, "width"),
            height=_int(data, "height"),
            codec=_text(data, "codec") or "unknown",
            source=_text(data, "source"),
            camera=_text(data, "camera"),
            models=_string_map(data.get("models")),
            redaction=_redaction(data.get("redaction")),
            software=_text(data, "software"),
            location=_location(data.get("location")),
            locked=bool(data.get("locked", False)),
            locked_at_utc=_text(data, "locked_at_utc"),
            recovered=bool(data.get("recovered", False)),
            recovered_note=_text(data, "recovered_note"),
            gap_before_s=_float(data, "gap_before_s"),
            in_progress=bool(data.get("in_progress", False)),
            schema_version=version,
            extra={k: v for k, v in data.items() if k not in known and k != "schema_version"},
        )


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise SidecarError(f"{key} is not text")


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SidecarError(f"{key} is not a number")
    return int(value)


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SidecarError(f"{key} is not a non-negative number")
    return float(value)


def _string_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SidecarError("models is not an object")
    return {str(k): str(v) for k, v in value.items()}


def _redaction(value: Any) -> RedactionCounts:
    if value is None:
        return RedactionCounts()
    if not isinstance(value, dict):
        raise SidecarError("redaction is not an object")
    return RedactionCounts(**{f.name: _int(value, f.name) for f in dataclasses.fields(RedactionCounts)})


def _location(value: Any) -> LocationSummary | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SidecarError("location is not an object")
    track = value.get("track") or []
    if not isinstance(track, list) or not all(isinstance(p, dict) for p in track):
        raise SidecarError("location.track is not a list of points")
    return LocationSummary(_int(value, "precision_decimals"), _int(value, "frames_with_location"), tuple(track))
