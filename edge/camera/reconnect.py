"""Keeping a live camera alive: reopen it with backoff when it stalls, disconnects or returns empty frames.

For live sources only (V4L2, GStreamer): a file's end is the end, but a camera that
stops delivering is a fault. `ReconnectingSource` wraps a factory that opens the
camera; on a failed, empty or stalled read it closes the camera and reopens it after
0.25 s, doubling up to 5 s, for as long as it takes (a dashcam must come back when the
cable does), until the stop event is set. Each read runs on a per-camera daemon thread,
so a driver call that never returns strands that thread only, and the process can
still stop. How long it was blind is logged and counted. Frames keep one index
sequence and the first camera's size, so the recording stays consistent; the recorder
starts a new segment after the gap (see `edge.record.segments`).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any
from collections.abc import Callable

import cv2

from edge.camera import FrameSource
from edge.errors import SourceError
from edge.types import Frame

log = logging.getLogger(__name__)

STALL_TIMEOUT_S = 2.0
OPEN_TIMEOUT_S = 15.0
BACKOFF_INITIAL_S = 0.25
BACKOFF_MAX_S = 5.0
_STILL_BLIND_EVERY_S = 60.0
_STOP_POLL_S = 0.1


class _Stalled(Exception):
    """A camera call did not return in time."""


class _Stopped(Exception):
    """The stop event was set while waiting for the camera."""


class _Reply:
    """The outcome of one call; a caller that gave up marks it abandoned so a late result is disposed of."""

    def __init__(self, dispose: Callable[[Any], None] | None) -> None:
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.finished = False
        self.abandoned = False
        self.ok = False
        self.value: Any = None
        self.dispose = dispose


class _Worker:
    """One daemon thread running the calls for one opened camera."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="camera-io", daemon=True).start()

    def _run(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            function, reply = item
            try:
                ok, value = True, function()
            except Exception as exc:  # noqa: BLE001 - handed to the calling thread, which decides
                ok, value = False, exc
            if reply is not None:
                self._deliver(reply, ok, value)
            elif not ok:
                log.debug("closing a retired camera failed: %s", value)

    @staticmethod
    def _deliver(reply: _Reply, ok: bool, value: Any) -> None:
        with reply.lock:
            reply.finished, reply.ok, reply.value = True, ok, value
            abandoned = reply.abandoned
        reply.done.set()
        if abandoned and ok and reply.dispose is not None:
            reply.dispose(value)  # e.g. a camera opened too late: close it so the device is not left busy

    def call(self, function: Callable[[], Any], timeout_s: float, stop: threading.Event,
             dispose: Callable[[Any], None] | None = None) -> Any:
        reply = _Reply(dispose)
        self._calls.put((function, reply))
        deadline = time.monotonic() + timeout_s
        # Short waits so a stop request (SIGTERM) is not held up by a stuck camera.
        while not reply.done.wait(min(_STOP_POLL_S, max(0.0, deadline - time.monotonic()))):
            if stop.is_set() or time.monotonic() >= deadline:
                with reply.lock:
                    if not reply.finished:
                        reply.abandoned = True
                        raise _Stopped() if stop.is_set() else _Stalled(f"no answer in {timeout_s:.1f} s")
                break
        if not reply.ok:
            raise reply.value
        return reply.value

    def retire(self, cleanup: Callable[[], None] | None = None) -> None:
        """Run `cleanup` after whatever is pending (even a stuck read), then end the thread."""
        if cleanup is not None:
            self._calls.put((cleanup, None))
        self._calls.put(None)


class ReconnectingSource:
    """A `FrameSource` over a live camera that survives stalls, unplugging and empty frames."""

    def __init__(self, open_camera: Callable[[], FrameSource], stop: threading.Event,
                 stall_timeout_s: float = STALL_TIMEOUT_S, backoff_initial_s: float = BACKOFF_INITIAL_S,
                 backoff_max_s: float = BACKOFF_MAX_S, open_timeout_s: float = OPEN_TIMEOUT_S) -> None:
        self._open_camera = open_camera
        self._stop = stop
        self._stall_timeout_s = stall_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._open_timeout_s = open_timeout_s
        self._worker = _Worker()
        self._camera: FrameSource | None = open_camera()  # a camera missing at start is a clear error, not a wait
        self.name = self._camera.name
        self.fps = self._camera.fps
        self.width, self.height = self._camera.width, self._camera.height
        self._index = 0
        self._blind_since: float | None = None
        self._last_frame_at: float | None = None
        self._last_report = 0.0
        self._attempts = 0
        self.blind_periods = 0
        self.blind_seconds = 0.0
        self.reopen_attempts = 0

    def read(self) -> Frame | None:
        """The next frame; blocks through faults; None only once the stop event is set."""
        while not self._stop.is_set():
            frame, fault = self._read_once()
            if frame is not None:
                self._end_blindness()
                self._last_frame_at = time.monotonic()
                return self._normalize(frame)
            if self._stop.is_set():
                break
            self._start_blindness(fault)
            self._reopen()
        return None

    def _read_once(self) -> tuple[Frame | None, str]:
        if self._camera is None:
            return None, "closed"
        try:
            frame = self._worker.call(self._camera.read, self._stall_timeout_s, self._stop)
        except _Stopped:
            return None, "stopped"
        except _Stalled:
            return None, f"stalled (no frame in {self._stall_timeout_s:.1f} s)"
        except (SourceError, OSError, cv2.error) as exc:
            return None, f"failed ({exc})"
        if frame is None:
            return None, "disconnected or ended"
        if frame.image_bgr is None or frame.image_bgr.size == 0:
            return None, "returned an empty frame"
        return frame, ""

    def _normalize(self, frame: Frame) -> Frame:
        """One index sequence and one clock across reopenings, and the first camera's size (the encoder's)."""
        height, width = frame.image_bgr.shape[:2]
        if (width, height) != (self.width, self.height):
            log.warning("camera %s came back at %dx%d; scaling to %dx%d to keep the recording consistent",
                        self.name, width, height, self.width, self.height)
            frame.image_bgr = cv2.resize(frame.image_bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        frame.index = self._index
        frame.t_media_ns = None  # a reopened device's own clock starts again: capture time is the timeline
        self._index += 1
        return frame

    def _start_blindness(self, fault: str) -> None:
        now = time.monotonic()
        if self._blind_since is None:
            # Blind since the last good frame: a stall has already cost its timeout when it is noticed.
            self._blind_since, self._last_report = self._last_frame_at or now, now
            self._attempts = 0
            log.warning("camera %s %s: reopening it", self.name, fault)
        elif now - self._last_report >= _STILL_BLIND_EVERY_S:
            self._last_report = now
            log.warning("camera %s still blind after %.0f s (%d reopen attempts; last: %s)",
                        self.name, now - self._blind_since, self._attempts, fault)

    def _end_blindness(self) -> None:
        if self._blind_since is None:
            return
        blind_s = time.monotonic() - self._blind_since
        self._blind_since = None
        self.blind_periods += 1
        self.blind_seconds += blind_s
        log.warning("camera %s is back: blind for %.1f s (%d reopen attempts)", self.name, blind_s, self._attempts)

    def _reopen(self) -> None:
        """Close the faulty camera and open it again, backing off between failures, until stopped."""
        self._abandon_camera()
        delay, longest = self._backoff
        while not self._stop.wait(delay):
            self._attempts += 1
            self.reopen_attempts += 1
            try:
                self._camera = self._worker.call(self._open_camera, self._open_timeout_s, self._stop, dispose=_close)
                return
            except _Stopped:
                return
            except (_Stalled, SourceError, OSError, cv2.error) as exc:
                log.debug("reopening camera %s failed: %s", self.name, exc)
                self._abandon_camera()
            delay = min(delay * 2, longest)

    def _abandon_camera(self) -> None:
        """Close on the old thread, after any stuck call; later calls go to a fresh thread."""
        camera, self._camera = self._camera, None
        self._worker.retire(camera.close if camera is not None else None)
        self._worker = _Worker()

    def close(self) -> None:
        camera, self._camera = self._camera, None
        self._worker.retire(camera.close if camera is not None else None)


def _close(camera: FrameSource) -> None:
    camera.close()
