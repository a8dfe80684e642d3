"""The frame loop: capture -> stamp (GPS fix, UTC) -> detect (under a deadline) -> redact -> store.

One stop event ends it. Redaction sits between detection and every sink; a failed detection reaches the
redactor as a `DetectionFailure` and comes out blurred whole or dropped, and counted.
Whatever ends the loop (source exhausted, stop requested, an error), the sink is
closed so the segment being written is finished, not lost.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Protocol

from edge.camera import FrameSource
from edge.detect.guard import DetectionFailure, GuardedDetector
from edge.redact import Redactor
from edge.types import Frame, RedactedFrame

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "redact", "store")


class FrameStamper(Protocol):
    def stamp(self, frame: Frame) -> bool:
        """Attach location and time; False when the frame must not be recorded."""


class FrameSink(Protocol):
    def write(self, frame: RedactedFrame) -> None: ...

    def note_dropped(self) -> None: ...

    def close(self) -> None: ...


class BackgroundSink:
    """Runs a sink's encoding in its own thread so it overlaps detection of the next frame.

    Only `RedactedFrame`s cross the queue. The queue is bounded (`depth` frames): when the
    encoder falls behind, `write` blocks, which slows capture instead of growing memory.
    (Live drop policies belong to the real-time pipeline.) An error in the writer thread
    is raised again from the next `write` or from `close`.
    """

    _CLOSE = object()

    def __init__(self, sink: FrameSink, depth: int = 4) -> None:
        self._sink = sink
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._failed = False  # stays set: after one failure nothing more is written
        self._thread = threading.Thread(target=self._drain, name="store", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._CLOSE:
                return
            if self._failed:
                continue  # keep draining so the producer never blocks on a dead writer
            try:
                if item is None:
                    self._sink.note_dropped()
                else:
                    self._sink.write(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread, not swallowed
                self._error, self._failed = exc, True

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, frame: RedactedFrame) -> None:
        self._raise_pending()
        self._queue.put(frame)

    def note_dropped(self) -> None:
        self._raise_pending()
        self._queue.put(None)

    def close(self) -> None:
        self._queue.put(self._CLOSE)
        self._thread.join()
        try:
            self._raise_pending()
        finally:
            self._sink.close()


@dataclass
class RunStats:
    frames_captured: int = 0
    frames_stored: int = 0
    faces: int = 0
    plates: int = 0
    whole_frame_redacted: int = 0
    dropped: int = 0
    detector_failures: int = 0
    paused_in_zone: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

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
            if item.name == "stage_seconds":
                for stage, seconds in other.stage_seconds.items():
                    self.stage_seconds[stage] += seconds
            else:
                setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def stage_ms_per_frame(self) -> dict[str, float]:
        n = max(1, self.frames_captured)
        return {stage: 1000 * total / n for stage, total in self.stage_seconds.items()}


class Pipeline:
    def __init__(self, source: FrameSource, detector: GuardedDetector, redactor: Redactor, sink: FrameSink,
                 stop: threading.Event | None = None, max_frames: int = 0,
                 stamper: FrameStamper | None = None) -> None:
        self._source = source
        self._detector = detector
        self._redactor = redactor
        self._sink = sink
        self._stop = stop or threading.Event()
        self._max_frames = max_frames
        self._stamper = stamper

    def run(self) -> RunStats:
        stats = RunStats()
        started = time.perf_counter()
        try:
            self._loop(stats)
        finally:
            t0 = time.perf_counter()
            self._sink.close()
            stats.stage_seconds["store"] += time.perf_counter() - t0
            stats.seconds = time.perf_counter() - started
        return stats

    def _loop(self, stats: RunStats) -> None:
        timings = stats.stage_seconds
        while not self._stop.is_set():
            if self._max_frames and stats.frames_captured >= self._max_frames:
                break
            t0 = time.perf_counter()
            frame = self._source.read()
            t1 = time.perf_counter()
            timings["capture"] += t1 - t0
            if frame is None:
                break
            stats.frames_captured += 1
            if self._stamper is not None and not self._stamper.stamp(frame):
                stats.paused_in_zone += 1  # inside a privacy zone with pausing on: never stored
                continue
            verdict = self._detector.detect(frame.image_bgr)
            t2 = time.perf_counter()
            timings["detect"] += t2 - t1
            if isinstance(verdict, DetectionFailure):
                stats.detector_failures += 1
            redacted = self._redactor.redact(frame, verdict)
            del frame  # the raw image has been overwritten in place; drop the last handle to it
            t3 = time.perf_counter()
            timings["redact"] += t3 - t2
            if redacted is None:
                stats.dropped += 1
                self._sink.note_dropped()
                continue
            self._sink.write(redacted)
            timings["store"] += time.perf_counter() - t3
            stats.count_stored(redacted)
