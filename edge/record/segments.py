"""Loop recording: the redacted stream cut into crash-safe segment files, each with a JSON sidecar.

Names carry the UTC time of the segment's first frame, e.g.
`dashcam_2026-11-21_22-37-37Z.mp4` and `dashcam_2026-11-21_22-37-37Z.json`, mode 0600.
The segment being written is a playable `.partial` (fragmented MP4, fsynced twice a
second; see `edge.record.encoder`) next to a snapshot of its sidecar (`.json.partial`,
rewritten every few seconds and at once on a lock), so a power cut loses about the last
second handed to the recorder and `edge.record.recovery` finishes the file on the next start.

`SegmentRecorder` cuts segments, runs their encoders, writes their sidecars and
snapshots, samples the GPS track and applies incident locks. The folder itself (lease,
recovery, trips index, retention, room on a full disk) is the `LoopStore` it is given
(edge.record.loop), opened by the caller: the recorder's constructor does no I/O. It is a
pipeline sink (`write`, `note_dropped`, `close`, all called from one thread) plus
`request_lock`, which any thread or signal handler may call. Finished and locked segments
are announced on `events` (edge.record.events) with their typed sidecar.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from edge import __version__
from edge.errors import UserError
from edge.gps.privacy import LocationPolicy
from edge.record.atomic import partial_path
from edge.record.encoder import EncoderSettings, VideoEncoder, fps_fraction
from edge.record.events import SegmentEvent, SegmentEvents
from edge.record.incident import LockRequests, LockWindow
from edge.record.loop import LoopOptions, LoopStore
from edge.record.sidecar import LocationSummary, RedactionCounts, Sidecar
from edge.record.store import SIDECAR_SUFFIX, StoredSegment, format_utc, parse_utc, read_sidecar, write_sidecar
from edge.redact import RedactedFrame, require_redacted

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 5.0
# A pause on the timeline longer than this (camera blind, reconnecting) starts a new segment,
# with the gap in its sidecar, rather than a file that shows one frame frozen for that long.
GAP_SPLIT_S = 2.0


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
    locked: bool = False


@dataclass
class _OpenSegment:
    encoder: VideoEncoder
    start_utc: str
    start_mono_ns: int
    start_timeline_ns: int
    gap_before_s: float | None = None
    counts: SegmentCounts = field(default_factory=SegmentCounts)
    end_utc: str = ""
    end_mono_ns: int = 0
    track: list[dict] = field(default_factory=list)
    last_point_ns: int | None = None
    frames_with_location: int = 0
    locked_utc: dt.datetime | None = None
    snapshot_mono_ns: int | None = None  # None: no snapshot yet


@dataclass(frozen=True)
class _Recent:
    """A segment finished in this run, with its monotonic span, for locks that reach back."""

    stored: StoredSegment
    start_mono_ns: int
    end_mono_ns: int


class SegmentRecorder:
    """Cuts the redacted stream into segments of `segment_seconds` each, and keeps the folder.

    Segments are cut by time on the frames' timeline (capture time, or a file's own
    time), not by frame count, so a segment lasts `segment_seconds` to within half a
    frame however many frames were dropped, and its sidecar's `duration_s` is that time.
    """

    def __init__(self, store: LoopStore, width: int, height: int, fps: float, segment_seconds: float,
                 settings: EncoderSettings, model_ids: dict[str, str], source_name: str,
                 location_policy: LocationPolicy | None = None, track_interval_s: float = 1.0,
                 camera: str = "") -> None:
        """`store` is opened (lease held, folder recovered, index open); nothing here touches the disk. `camera`
        names the camera in a car with several; its sidecars carry it."""
        self._store = store
        self._folder = store.folder
        self._size = (width, height)
        self._fps = fps
        self._segment_ns = round(segment_seconds * 1e9)
        self._frame_ns = round(1e9 / fps)
        self._gap_split_ns = int(max(GAP_SPLIT_S, 3 / fps) * 1e9)
        self._settings = settings
        self._model_ids = model_ids
        self._source_name = source_name
        self._camera = camera or None
        self._location_policy = location_policy
        self._track_interval_ns = int(track_interval_s * 1e9)
        self._loop = store.options
        self._locks = LockRequests(self._loop.lock_before_s, self._loop.lock_after_s)
        self._current: _OpenSegment | None = None
        self._last_timeline_ns: int | None = None
        self._pending_drops = 0
        self._recent: deque[_Recent] = deque()
        self._failed = False
        self.finished: list[SegmentInfo] = []
        self.events = SegmentEvents()  # finished and locked segments, with their sidecars
        store.on_delete(self._forget)

    @classmethod
    def open(cls, directory: Path, width: int, height: int, fps: float, segment_seconds: float,
             settings: EncoderSettings, model_ids: dict[str, str], source_name: str,
             location_policy: LocationPolicy | None = None, track_interval_s: float = 1.0,
             loop: LoopOptions | None = None) -> SegmentRecorder:
        """Open the folder's `LoopStore` (all the start-up I/O) and a recorder on it."""
        return cls(LoopStore.open(directory, loop), width, height, fps, segment_seconds, settings, model_ids,
                   source_name, location_policy, track_interval_s)

    @property
    def deleted_for_full_disk(self) -> int:
        return self._store.deleted_for_full_disk

    @property
    def directory(self) -> Path:
        return self._folder.root

    # ---- the sink interface (one thread) --------------------------------------------------------------------

    def write(self, frame: RedactedFrame) -> None:
        require_redacted(frame, "SegmentRecorder")  # before a segment file is opened for it
        try:
            self._write(frame)
        except (UserError, OSError):
            self._failed = True
            raise

    def _write(self, frame: RedactedFrame) -> None:
        self._apply_lock_requests()
        gap_ns = 0 if self._last_timeline_ns is None else frame.timeline_ns - self._last_timeline_ns
        long_gap = gap_ns > self._gap_split_ns
        if self._current is not None and long_gap:
            log.info("no frames for %.1f s: finishing %s and starting a new segment",
                     gap_ns / 1e9, self._current.encoder.final_path.name)
            self._finish()
        elif (self._current is not None
              and self._length_with(self._current, frame) > self._segment_ns + self._frame_ns // 2):
            self._finish()  # after frames were dropped: this one would overrun the segment, so it starts the next
        if self._current is None:
            self._current = self._open(frame, gap_before_s=gap_ns / 1e9 if long_gap else None)
        segment = self._current
        segment.encoder.write(frame)
        segment.counts.add(frame)
        segment.end_utc = _iso(frame)
        segment.end_mono_ns = frame.t_mono_ns
        self._last_timeline_ns = frame.timeline_ns
        self._add_location(segment, frame)
        self._lock_current_if_covered(segment)
        for window in self._locks.expire(frame.t_mono_ns):
            # No stored frame fell in the window (zero seconds around the request, or frames dropped
            # there): the footage right after the request is this frame's segment.
            self._lock_segment(segment, window)
        last = segment.snapshot_mono_ns
        if last is None or frame.t_mono_ns - last >= SNAPSHOT_INTERVAL_S * 1e9:
            self._write_snapshot(segment)
        if self._length_with(segment, frame) >= self._segment_ns - self._frame_ns // 2:
            self._finish()

    def _length_with(self, segment: _OpenSegment, frame: RedactedFrame) -> int:
        """The segment's length in ns if `frame` were its last: from its first frame, plus one frame."""
        return frame.timeline_ns - segment.start_timeline_ns + self._frame_ns

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
        """Finish the segment being written; after an earlier failure, salvage quietly (that error is reported)."""
        try:
            self._apply_lock_requests()
            if self._current is not None:
                self._finish(at_close=True)
        except (UserError, OSError) as exc:
            if not self._failed:
                raise
            log.error("could not finish the last segment after the earlier error: %s", exc)
        finally:
            self._store.close()

    # ---- incident locks -------------------------------------------------------------------------------------

    def request_lock(self, t_mono_ns: int | None = None) -> None:
        """Lock the incident happening now; safe from any thread and from signal handlers."""
        self._locks.request(t_mono_ns)

    def _apply_lock_requests(self) -> None:
        for window in self._locks.take_new():
            log.warning("incident lock: keeping footage from %.0f s before to %.0f s after the request",
                        self._loop.lock_before_s, self._loop.lock_after_s)
            for recent in list(self._recent):
                if window.overlaps(recent.start_mono_ns, recent.end_mono_ns):
                    self._locks.mark_met(window)
                    if not recent.stored.locked:
                        self._lock_finished(recent, window.requested_utc)
            if self._current is not None:
                self._lock_current_if_covered(self._current)

    def _lock_current_if_covered(self, segment: _OpenSegment) -> None:
        if segment.locked_utc is not None:
            return
        window = self._locks.covering(segment.start_mono_ns, segment.end_mono_ns)
        if window is not None:
            self._lock_segment(segment, window)

    def _lock_segment(self, segment: _OpenSegment, window: LockWindow) -> None:
        if segment.locked_utc is not None:
            return
        segment.locked_utc = window.requested_utc
        self._write_snapshot(segment)  # a power cut right after the crash must not lose the lock

    def _lock_finished(self, recent: _Recent, t_utc: dt.datetime) -> None:
        stored = self._store.lock(recent.stored, t_utc)
        sidecar = read_sidecar(stored.sidecar_path)
        if sidecar is not None:
            self.events.publish(SegmentEvent("locked", stored.video_path, stored.sidecar_path, sidecar))
        self._recent[self._recent.index(recent)] = _Recent(stored, recent.start_mono_ns, recent.end_mono_ns)
        self._mark_locked_in_finished(recent.stored.video_path, stored.video_path)
        log.warning("locked %s", stored.name)

    def _mark_locked_in_finished(self, old_video: Path, new_video: Path) -> None:
        for i, info in enumerate(self.finished):
            if info.video_path == old_video:
                self.finished[i] = SegmentInfo(new_video, new_video.with_suffix(SIDECAR_SUFFIX), info.counts, True)

    # ---- segment files --------------------------------------------------------------------------------------

    def _open(self, frame: RedactedFrame, gap_before_s: float | None) -> _OpenSegment:
        self._store.check_folder()
        video_path = self._folder.new_video_path(frame.t_utc)
        encoder = VideoEncoder(video_path, *self._size, self._fps, self._settings, crash_safe=True,
                               make_room=self._store.make_room)
        segment = _OpenSegment(encoder=encoder, start_utc=_iso(frame), start_mono_ns=frame.t_mono_ns,
                               start_timeline_ns=frame.timeline_ns, end_mono_ns=frame.t_mono_ns,
                               gap_before_s=gap_before_s)
        segment.counts.dropped, self._pending_drops = self._pending_drops, 0
        log.info("recording segment %s", video_path.name)
        return segment

    def _write_snapshot(self, segment: _OpenSegment) -> None:
        """The sidecar so far, as `X.json.partial`: what recovery needs after a power cut."""
        video_path = segment.encoder.final_path
        snapshot = self._sidecar(segment, video_path).replace(in_progress=True)
        write_sidecar(partial_path(video_path.with_suffix(SIDECAR_SUFFIX)), snapshot, self._store.make_room)
        segment.snapshot_mono_ns = segment.end_mono_ns

    def _finish(self, at_close: bool = False) -> None:
        segment, self._current = self._current, None
        if segment is None:
            return
        video_path = segment.encoder.close()
        sidecar_path = video_path.with_suffix(SIDECAR_SUFFIX)
        sidecar = self._sidecar(segment, video_path)
        write_sidecar(sidecar_path, sidecar, self._store.make_room)
        partial_path(sidecar_path).unlink(missing_ok=True)
        stored = StoredSegment(video_path, parse_utc(segment.start_utc), video_path.stat().st_size, locked=False)
        if segment.locked_utc is not None:
            stored = self._folder.lock(stored, segment.locked_utc, self._store.make_room)
            log.warning("locked %s", stored.name)
        self.finished.append(SegmentInfo(stored.video_path, stored.sidecar_path, segment.counts, stored.locked))
        final = sidecar.replace(video=stored.name) if stored.locked else sidecar
        self.events.publish(SegmentEvent("finished", stored.video_path, stored.sidecar_path, final))
        self._remember(_Recent(stored, segment.start_mono_ns, segment.end_mono_ns))
        log.info("finished %s: %d frames", video_path.name, segment.counts.frames)
        self._store.keep(stored, final, at_close=at_close)

    def _remember(self, recent: _Recent) -> None:
        """Keep the finished segments a later lock request can still reach back to."""
        self._recent.append(recent)
        horizon = recent.end_mono_ns - int(self._loop.lock_before_s * 1e9)
        while self._recent and self._recent[0].end_mono_ns < horizon:
            self._recent.popleft()

    def _forget(self, deleted: set[Path]) -> None:
        """Retention deleted these: a later lock cannot reach back to them."""
        self._recent = deque(r for r in self._recent if r.stored.video_path not in deleted)

    # ---- sidecars -------------------------------------------------------------------------------------------

    def _sidecar(self, segment: _OpenSegment, video_path: Path) -> Sidecar:
        rate = fps_fraction(self._fps)
        counts = segment.counts
        return Sidecar(
            video=video_path.name,
            start_utc=segment.start_utc,
            end_utc=segment.end_utc,
            frame_count=counts.frames,
            duration_s=round(segment.encoder.duration_s, 3),  # the time the frames span, drops included
            fps=float(rate),
            fps_fraction=f"{rate.numerator}/{rate.denominator}",
            width=self._size[0],
            height=self._size[1],
            codec=segment.encoder.codec,
            source=self._source_name,
            camera=self._camera,
            models=self._model_ids,
            redaction=RedactionCounts(faces=counts.faces, plates=counts.plates,
                                      whole_frame_redacted_frames=counts.whole_frame_redacted,
                                      dropped_frames=counts.dropped),
            software=f"privacy-dashcam {__version__}",
            location=self._location_summary(segment),
            locked=segment.locked_utc is not None,
            locked_at_utc=format_utc(segment.locked_utc) if segment.locked_utc is not None else None,
            gap_before_s=round(segment.gap_before_s, 2) if segment.gap_before_s is not None else None,
        )

    def _location_summary(self, segment: _OpenSegment) -> LocationSummary | None:
        if self._location_policy is None:
            return None
        return LocationSummary(self._location_policy.precision_decimals, segment.frames_with_location,
                               tuple(segment.track))


def _iso(frame: RedactedFrame) -> str:
    return format_utc(frame.t_utc)
