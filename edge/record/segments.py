"""Loop-recording segments: fixed-length anonymized video files, each with a JSON sidecar.

Names carry the UTC time of the segment's first frame, e.g.
`dashcam_2026-11-21_22-37-37Z.mp4` and `dashcam_2026-11-21_22-37-37Z.json`. Both are
written as `.partial` and renamed when complete, with mode 0600.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from edge import __version__
from edge.gps.privacy import LocationPolicy
from edge.record.atomic import unique_path, write_atomic
from edge.record.encoder import EncoderSettings, VideoEncoder, fps_fraction
from edge.types import RedactedFrame

log = logging.getLogger(__name__)


@dataclass
class SegmentCounts:
    frames: int = 0
    faces: int = 0
    plates: int = 0
    whole_frame_redacted: int = 0
    dropped: int = 0

    def add(self, frame: RedactedFrame) -> None:
        self.frames += 1
        self.faces += frame.counts.faces
        self.plates += frame.counts.plates
        self.whole_frame_redacted += int(frame.counts.whole_frame)


@dataclass(frozen=True)
class SegmentInfo:
    video_path: Path
    sidecar_path: Path
    counts: SegmentCounts


@dataclass
class _OpenSegment:
    encoder: VideoEncoder
    start_utc: str
    counts: SegmentCounts = field(default_factory=SegmentCounts)
    end_utc: str = ""
    track: list[dict] = field(default_factory=list)
    last_point_ns: int | None = None
    frames_with_location: int = 0


class SegmentRecorder:
    """Cuts the redacted stream into segments of `segment_seconds` of video each."""

    def __init__(self, directory: Path, width: int, height: int, fps: float, segment_seconds: float,
                 settings: EncoderSettings, model_ids: dict[str, str], source_name: str,
                 location_policy: LocationPolicy | None = None, track_interval_s: float = 1.0) -> None:
        self._directory = directory
        self._size = (width, height)
        self._fps = fps
        self._frames_per_segment = max(1, round(segment_seconds * fps))
        self._settings = settings
        self._model_ids = model_ids
        self._source_name = source_name
        self._location_policy = location_policy
        self._track_interval_ns = int(track_interval_s * 1e9)
        self._current: _OpenSegment | None = None
        self._pending_drops = 0
        self.finished: list[SegmentInfo] = []

    def write(self, frame: RedactedFrame) -> None:
        if self._current is None:
            self._current = self._open(frame)
        segment = self._current
        segment.encoder.write(frame)
        segment.counts.add(frame)
        segment.end_utc = _iso(frame)
        self._add_location(segment, frame)
        if segment.counts.frames >= self._frames_per_segment:
            self._finish()

    def _add_location(self, segment: _OpenSegment, frame: RedactedFrame) -> None:
        """Store at most one rounded, zone-filtered point per track interval of GPS time."""
        if self._location_policy is None:
            return
        point = self._location_policy.storable(frame.fix)
        if point is None:
            return
        segment.frames_with_location += 1
        # GPS time, not capture time: a replay slower or faster than real time still gets one point per interval.
        stamp_ns = int(point.t_utc.timestamp() * 1e9) if point.t_utc else frame.t_mono_ns
        last = segment.last_point_ns
        if last is None or stamp_ns - last >= self._track_interval_ns:
            segment.track.append(point.to_json())
            segment.last_point_ns = stamp_ns

    def note_dropped(self) -> None:
        """A frame was dropped instead of stored; counted in the segment it belongs to."""
        if self._current is not None:
            self._current.counts.dropped += 1
        else:
            self._pending_drops += 1

    def close(self) -> None:
        if self._current is not None:
            self._finish()

    def _open(self, frame: RedactedFrame) -> _OpenSegment:
        stem = "dashcam_" + frame.t_utc.strftime("%Y-%m-%d_%H-%M-%SZ")
        video_path = unique_path(self._directory, stem, ".mp4")
        encoder = VideoEncoder(video_path, *self._size, self._fps, self._settings)
        segment = _OpenSegment(encoder=encoder, start_utc=_iso(frame))
        segment.counts.dropped, self._pending_drops = self._pending_drops, 0
        log.info("recording segment %s", video_path.name)
        return segment

    def _finish(self) -> None:
        segment, self._current = self._current, None
        video_path = segment.encoder.close()
        sidecar_path = video_path.with_suffix(".json")
        write_atomic(sidecar_path, json.dumps(self._sidecar(segment, video_path), indent=2).encode())
        self.finished.append(SegmentInfo(video_path, sidecar_path, segment.counts))
        log.info("finished %s: %d frames", video_path.name, segment.counts.frames)

    def _sidecar(self, segment: _OpenSegment, video_path: Path) -> dict:
        rate = fps_fraction(self._fps)
        counts = segment.counts
        return {
            "video": video_path.name,
            "start_utc": segment.start_utc,
            "end_utc": segment.end_utc,
            "frame_count": counts.frames,
            "fps": float(rate),
            "fps_fraction": f"{rate.numerator}/{rate.denominator}",
            "width": self._size[0],
            "height": self._size[1],
            "codec": segment.encoder.codec,
            "source": self._source_name,
            "models": self._model_ids,
            "redaction": {
                "faces": counts.faces,
                "plates": counts.plates,
                "whole_frame_redacted_frames": counts.whole_frame_redacted,
                "dropped_frames": counts.dropped,
            },
            "software": f"privacy-dashcam {__version__}",
            "location": self._location_summary(segment),
        }

    def _location_summary(self, segment: _OpenSegment) -> dict | None:
        if self._location_policy is None:
            return None
        return {
            "precision_decimals": self._location_policy.precision_decimals,
            "frames_with_location": segment.frames_with_location,
            "track": segment.track,
        }


def _iso(frame: RedactedFrame) -> str:
    return frame.t_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
