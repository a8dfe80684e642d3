"""The frame loop, in threads: capture -> detect (keyframes) + track -> redact -> store.

Capture (source read, GPS and UTC stamp, scene-cut check on a grey thumbnail) feeds a
delay line of raw frames. A detect thread runs the guarded detectors on keyframes and
feeds a `BoxTracker`: the first frame, both sides of every scene cut, then every
`detect_every`-th frame (a live source as often as the detectors keep up, at most that
often). The redact thread (the caller's) takes the head of the line only once a keyframe
at or after it is done, so every frame is covered from both of its bracketing keyframes
(see edge.detect.tracking for the cover and the gap bound); the redactor hides the boxes
and each sink (edge.sinks: the recorder, a preview...) takes them in a thread of its own
behind its own bounded queue. Only redacted frames reach any sink.

Drop policies, each counted:
- file source: nothing is dropped; capture waits for room (offline work, exact cadence);
- live source: capture never waits. A frame arriving to a line already holding
  `delay_frames` frames is dropped before it is redacted or stored (`dropped_overload`);
  a frame whose bracketing keyframes are too far apart, in frames or in time, is blurred
  whole (`stale_frames`).
A stop finishes with one last detection of the newest frame, so the frames already
captured are bracketed too. A failed keyframe fails the frames it brackets closed. An optional governor (edge.thermal)
lowers the cadence, or has every frame blurred whole, when the board runs hot. Whatever
ends the loop (source end, stop request, an error in any stage), every sink is closed so
the segment being written is finished, not lost, and the first error is raised again.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol

import cv2
import numpy as np

from edge.camera import FrameSource
from edge.config import TrackConfig
from edge.detect.guard import GuardedDetector
from edge.detect.motion import MotionEstimator, small_grey
from edge.detect.scenecut import SceneCutDetector, thumbnail
from edge.detect.tracking import BoxTracker
from edge.redact import RedactedFrame, Redactor
from edge.sinks import FanOut, FrameSink, Outlet
from edge.types import DetectionFailure, Detections, Frame

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "redact", "store")
_POLL_S = 0.05  # how often waiting threads look at the stop event
_JOIN_TIMEOUT_S = 2.0  # beyond the detector's own deadline, for stages to finish after a stop

DetectionObserver = Callable[[int, "Detections | DetectionFailure"], None]


class FrameStamper(Protocol):
    def stamp(self, frame: Frame) -> bool:
        """Attach location and time; False when the frame must not be recorded."""


class FrameGate(Protocol):
    """Decides, in the capture thread, whether a raw frame goes on at all (parking mode's low rate)."""

    def admit(self, frame: Frame) -> bool: ...


class Governor(Protocol):
    """Degrades a live run in a privacy-safe order when the board runs hot (edge.thermal.HeatGovernor)."""

    def detect_every(self) -> int: ...

    def blur_whole(self) -> bool: ...

    def note_detection(self, seconds: float) -> None: ...


@dataclass
class RunStats:
    frames_captured: int = 0
    frames_detected: int = 0
    frames_stored: int = 0
    faces: int = 0
    plates: int = 0
    whole_frame_redacted: int = 0
    dropped: int = 0
    detector_failures: int = 0
    detector_timeouts: int = 0  # of the failures: the deadline passed (detect.timeout_ms, offline_timeout_ms)
    paused_in_zone: int = 0
    parked_skipped: int = 0  # turned away by parking mode's low rate: never redacted, never stored
    dropped_overload: int = 0
    stale_frames: int = 0  # blurred whole: bracketing keyframes too far apart, missing, or across a cut
    scene_cuts: int = 0
    heat_blurred: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    sink_skipped: dict[str, int] = field(default_factory=dict)  # frames a drop-oldest sink (a preview) lost
    sink_seconds: dict[str, float] = field(default_factory=dict)  # each sink's own busy time (its thread)

    @property
    def fps(self) -> float:
        return self.frames_captured / self.seconds if self.seconds > 0 else 0.0

    def count_stored(self, frame: RedactedFrame) -> None:
        self.frames_stored += 1
        self.faces += frame.counts.faces
        self.plates += frame.counts.plates
        self.whole_frame_redacted += int(frame.counts.whole_frame)

    def add(self, other: RunStats) -> None:
        """Sum another run's counters and times into this one (several inputs, one report)."""
        for item in fields(self):
            mine = getattr(self, item.name)
            if isinstance(mine, dict):
                for key, value in getattr(other, item.name).items():
                    mine[key] = mine.get(key, 0) + value
            else:
                setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def stage_ms_per_frame(self) -> dict[str, float]:
        """Each stage's time per captured frame (detection amortized over the frames it covers)."""
        n = max(1, self.frames_captured)
        return {stage: 1000 * total / n for stage, total in self.stage_seconds.items()}

    @property
    def detect_ms_per_keyframe(self) -> float:
        return 1000 * self.stage_seconds["detect"] / max(1, self.frames_detected)

    def to_dict(self) -> dict:
        """The counters, speed and per-stage milliseconds, for `--stats-json` and benchmarks."""
        data = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "stage_seconds"}
        data["fps"] = round(self.fps, 3)
        data["stage_ms_per_frame"] = {k: round(v, 3) for k, v in self.stage_ms_per_frame().items()}
        data["detect_ms_per_keyframe"] = round(self.detect_ms_per_keyframe, 3)
        return data


class _DelayLine:
    """Raw frames waiting for redaction and the keyframe state around them, under one condition."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.frames: collections.deque[Frame] = collections.deque()
        self.capture_done = False
        self.detect_done = False
        self.failed = False  # a stage raised: every stage stops, nothing more is stored
        self.detected_upto = -1  # newest keyframe applied to the tracker
        self.next_due = 0  # the next keyframe is the first frame at or after this index
        self.forced: set[int] = set()  # keyframes a scene cut demands, whatever the cadence
        self.final_detection = False  # after a stop: the newest frame was sent for one last detection


class Pipeline:
    def __init__(self, source: FrameSource, detector: GuardedDetector, redactor: Redactor,
                 sinks: FrameSink | Outlet | Sequence[FrameSink | Outlet],
                 stop: threading.Event | None = None, max_frames: int = 0, stamper: FrameStamper | None = None,
                 tracking: TrackConfig | None = None, live: bool = False,
                 on_detections: DetectionObserver | None = None,
                 on_frame_stored: Callable[[], None] | None = None, governor: Governor | None = None,
                 gate: FrameGate | None = None) -> None:
        self._source = source
        self._detector = detector
        self._redactor = redactor
        self._outlets: list[FrameSink | Outlet] = list(sinks) if isinstance(sinks, (list, tuple)) else [sinks]  # type: ignore[list-item]
        self._stop = stop or threading.Event()
        self._max_frames = max_frames
        self._stamper = stamper
        self._tracking = tracking or TrackConfig()
        self._tracker = BoxTracker(self._tracking)
        self._live = live
        self._on_detections = on_detections
        self._on_frame_stored = on_frame_stored  # a liveness heartbeat (systemd watchdog); must be cheap
        self._governor = governor
        self._gate = gate
        self._line = _DelayLine()
        self._cuts = SceneCutDetector(self._tracking.scene_cut_threshold)
        self._motion = MotionEstimator()
        self._previous_grey: np.ndarray | None = None  # the previous keyframe, small, for the camera's motion
        self._errors: list[BaseException] = []
        self._overload_forwarded = 0

    def run(self) -> RunStats:
        stats = RunStats()
        started = time.perf_counter()
        self._detector.start_video()  # the mirrored look's keyframe count starts with each video
        sink = FanOut(self._outlets)
        workers = [threading.Thread(target=self._guarded, args=(stage, stats), name=stage.__name__[1:], daemon=True)
                   for stage in (self._capture, self._detect)]
        for worker in workers:
            worker.start()
        try:
            self._release(stats, sink)
        except BaseException:
            self._fail()
            raise
        finally:
            self._join(workers)
            closing = time.perf_counter()
            try:
                sink.close()
            finally:
                stats.stage_seconds["store"] = sink.busy_seconds + time.perf_counter() - closing
                stats.sink_skipped = sink.skipped()
                stats.sink_seconds = sink.busy_by_sink()
                stats.seconds = time.perf_counter() - started
        if self._errors:
            raise self._errors[0]
        return stats

    def _join(self, workers: list[threading.Thread]) -> None:
        """Wait for capture and detection to end; a camera stuck inside read() is left behind, not waited on."""
        deadline = time.monotonic() + _JOIN_TIMEOUT_S + self._detector.timeout_s
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.warning("%s stage did not stop within %.0f s; leaving it behind", worker.name,
                            _JOIN_TIMEOUT_S + self._detector.timeout_s)

    def _guarded(self, stage: Callable[[RunStats], None], stats: RunStats) -> None:
        """Run a worker stage; its error stops every stage and is raised again by `run`."""
        try:
            stage(stats)
        except BaseException as exc:  # noqa: BLE001 - handed to run(), which raises it in the caller's thread
            self._errors.append(exc)
            self._fail()

    def _fail(self) -> None:
        with self._line.cond:
            self._line.failed = True
            self._line.cond.notify_all()

    # ---- capture ------------------------------------------------------------------------------------------

    def _capture(self, stats: RunStats) -> None:
        line = self._line
        try:
            while not (self._stop.is_set() or line.failed):
                if self._max_frames and stats.frames_captured >= self._max_frames:
                    break
                started = time.perf_counter()
                frame = self._source.read()
                stats.stage_seconds["capture"] += time.perf_counter() - started
                if frame is None:
                    break
                stats.frames_captured += 1
                if self._stamper is not None and not self._stamper.stamp(frame):
                    stats.paused_in_zone += 1  # inside a privacy zone with pausing on: never stored
                    continue
                if self._gate is not None and not self._gate.admit(frame):
                    stats.parked_skipped += 1
                    continue
                thumb = thumbnail(frame.image_bgr)
                with line.cond:
                    self._admit(frame, thumb, stats)
        finally:
            with line.cond:
                line.capture_done = True
                line.cond.notify_all()

    def _admit(self, frame: Frame, thumb: np.ndarray, stats: RunStats) -> None:
        """Append to the line (lock held): a live source drops when full, a file waits for room."""
        line = self._line
        if self._live:
            if len(line.frames) >= self._tracking.delay_frames:
                stats.dropped_overload += 1  # never redacted, never stored
                return
        else:
            # Room for the frames up to the next keyframe plus the one after, so detection overlaps redaction.
            while len(line.frames) >= self._file_capacity():
                if self._stop.is_set() or line.failed:
                    return
                line.cond.wait(_POLL_S)
        if self._cuts.is_cut(thumb):  # only kept frames are compared, so a cut on a dropped one still shows
            self._note_cut(frame.index, stats)
        line.frames.append(frame)
        line.cond.notify_all()

    def _file_capacity(self) -> int:
        return 2 * self._detect_every() + 2

    def _note_cut(self, first_frame: int, stats: RunStats) -> None:
        """A scene starts at `first_frame` (lock held): detect both sides of the cut, carry nothing across."""
        line = self._line
        stats.scene_cuts += 1
        self._tracker.note_cut(first_frame)
        line.forced.add(first_frame)
        if line.frames and line.frames[-1].index > line.detected_upto:
            line.forced.add(line.frames[-1].index)  # the old scene's last frame, so its frames are bracketed

    # ---- detect -------------------------------------------------------------------------------------------

    def _detect(self, stats: RunStats) -> None:
        line = self._line
        try:
            while True:
                with line.cond:
                    frame = self._wait_for_keyframe()
                    if frame is None:
                        return
                    image, index = frame.image_bgr.copy(), frame.index  # redaction may overwrite the original
                    t_ns = frame.timeline_ns
                started = time.perf_counter()
                verdict = self._detector.detect(image)
                elapsed = time.perf_counter() - started
                stats.stage_seconds["detect"] += elapsed
                if self._governor is not None:
                    self._governor.note_detection(elapsed)
                stats.frames_detected += 1
                stats.detector_failures += isinstance(verdict, DetectionFailure)
                stats.detector_timeouts += isinstance(verdict, DetectionFailure) and verdict.timed_out
                if self._on_detections is not None:
                    self._on_detections(index, verdict)
                started = time.perf_counter()
                motion = self._camera_motion(image)
                stats.stage_seconds["detect"] += time.perf_counter() - started
                with line.cond:
                    self._tracker.update(index, verdict, t_ns, motion)
                    line.detected_upto = index
                    line.next_due = index + self._detect_every()
                    line.forced = {i for i in line.forced if i > index}
                    line.cond.notify_all()
        finally:
            with line.cond:
                line.detect_done = True
                line.cond.notify_all()

    def _camera_motion(self, image_bgr: np.ndarray) -> np.ndarray | None:
        """The camera's motion since the previous keyframe, or None when it cannot be estimated."""
        grey = small_grey(image_bgr)
        previous, self._previous_grey = self._previous_grey, grey
        if previous is None or previous.shape != grey.shape:
            return None
        try:
            return self._motion.between(previous, grey, image_bgr.shape[1])
        except cv2.error as exc:  # only an extra: the tracker's other rules still cover the frame
            log.debug("camera motion not estimated: %s", exc)
            return None

    def _detect_every(self) -> int:
        every = self._governor.detect_every() if self._governor is not None else self._tracking.detect_every
        return min(every, self._tracking.max_gap_frames)  # a slower cadence would only blur every frame whole

    def _wait_for_keyframe(self) -> Frame | None:
        """The next frame to detect (lock held), or None when detection is over."""
        line = self._line
        while not line.failed:
            waiting = [frame for frame in line.frames if frame.index > line.detected_upto]
            forced = [frame for frame in waiting if frame.index in line.forced or line.detected_upto < 0]
            if not self._live:  # a file: the first frame that is forced (a cut's side) or due, in order
                forced = [frame for frame in waiting if frame.index in line.forced or frame.index >= line.next_due
                          or line.detected_upto < 0][:1]
            if forced:
                return forced[0]  # the first frame, and both sides of a cut, in order
            if self._stop.is_set():
                # One last detection of the newest frame, so the frames already captured are bracketed.
                if line.final_detection or not waiting:
                    return None
                line.final_detection = True
                return waiting[-1]
            due = [frame for frame in waiting if frame.index >= line.next_due]
            if due:
                return due[-1] if self._live else due[0]  # live: the newest, to keep up
            if waiting and (line.capture_done or (self._live and len(line.frames) >= self._tracking.delay_frames)):
                # The frames after the last keyframe (or a full live line) get one more detection.
                return waiting[-1]
            if line.capture_done:
                return None
            line.cond.wait(_POLL_S)
        return None

    # ---- redact and store ---------------------------------------------------------------------------------

    def _release(self, stats: RunStats, sink: FanOut) -> None:
        line = self._line
        while True:
            with line.cond:
                while not self._releasable():
                    if line.failed or self._drained():
                        return
                    line.cond.wait(_POLL_S)
                frame = line.frames.popleft()
                plan = self._plan(frame.index)
                line.cond.notify_all()
            for _ in range(stats.dropped_overload - self._overload_forwarded):
                sink.note_dropped()
                self._overload_forwarded += 1
            self._store(frame, plan, stats, sink)

    def _plan(self, frame_index: int) -> Detections | DetectionFailure:
        """The tracker's boxes for a frame (lock held); a tracking error fails the frame closed."""
        try:
            plan = self._tracker.plan(frame_index)
            self._tracker.forget_before(frame_index)
        except (ValueError, IndexError, FloatingPointError) as exc:
            log.error("tracking failed on frame %d (%s); hiding the whole frame", frame_index, exc)
            return DetectionFailure(f"tracking error: {exc}")
        return plan

    def _drained(self) -> bool:
        """Nothing left to redact and nothing more coming (lock held). After a stop, capture may still be
        stuck inside a camera's read(); the frames already captured are enough to finish with."""
        line = self._line
        ended = line.capture_done or self._stop.is_set()
        return not line.frames and line.detect_done and ended

    def _releasable(self) -> bool:
        """Whether the head frame can be redacted now (lock held)."""
        line = self._line
        if not line.frames:
            return False
        # Only once a keyframe at or after it is in: a frame is never released on a guess of the future.
        return line.frames[0].index <= line.detected_upto or line.detect_done

    def _store(self, frame: Frame, plan: Detections | DetectionFailure, stats: RunStats,
               sink: FanOut) -> None:
        started = time.perf_counter()
        if self._governor is not None and self._governor.blur_whole():
            plan = DetectionFailure("board too hot: every frame is blurred whole")
            stats.heat_blurred += 1
        stats.stale_frames += isinstance(plan, DetectionFailure) and plan.stale
        redacted = self._redactor.redact(frame, plan)
        del frame  # the raw image has been overwritten in place; drop the last handle to it
        stats.stage_seconds["redact"] += time.perf_counter() - started
        if redacted is None:
            stats.dropped += 1
            sink.note_dropped()
            return
        sink.write(redacted)
        stats.count_stored(redacted)
        if self._on_frame_stored is not None:
            self._on_frame_stored()
