"""The live view: a pipeline sink that keeps the latest redacted frame as a small JPEG.

It is one more outlet of the pipeline (edge.sinks), with the `DROP_OLDEST` policy and a
queue of one, so a slow phone can never stall recording; it takes only `RedactedFrame`s
(`require_redacted`), draws nothing on them, and keeps at most `fps` frames a second,
scaled to `width` pixels, in memory only: nothing of it is written to disk.
"""
from __future__ import annotations

import threading
import time

import cv2

from edge.redact import RedactedFrame, require_redacted


class LatestJpeg:
    """The newest preview frame, numbered, for the web app's threads."""

    def __init__(self) -> None:
        self._jpeg: bytes | None = None
        self._number = 0
        self._changed = threading.Condition()

    def put(self, jpeg: bytes) -> None:
        with self._changed:
            self._jpeg, self._number = jpeg, self._number + 1
            self._changed.notify_all()

    def get(self) -> tuple[int, bytes | None]:
        with self._changed:
            return self._number, self._jpeg

    def wait_newer(self, number: int, timeout_s: float) -> tuple[int, bytes | None]:
        with self._changed:
            self._changed.wait_for(lambda: self._number > number, timeout=timeout_s)
            return self._number, self._jpeg


class PreviewSink:
    """A `FrameSink`: every `1/fps` seconds the frame is scaled (a copy) and JPEG-encoded into `latest`."""

    def __init__(self, latest: LatestJpeg, fps: float = 2.0, width: int = 640, quality: int = 70) -> None:
        self.latest = latest
        self._interval_s = 1.0 / fps
        self._width = width
        self._quality = quality
        self._next_s = 0.0
        self.encoded = 0

    def write(self, frame: RedactedFrame) -> None:
        require_redacted(frame, "PreviewSink")
        now = time.monotonic()
        if now < self._next_s:
            return
        self._next_s = now + self._interval_s
        image = frame.image_bgr
        height, width = image.shape[:2]
        if width > self._width:
            image = cv2.resize(image, (self._width, round(height * self._width / width)), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if ok:
            self.latest.put(jpeg.tobytes())
            self.encoded += 1

    def note_dropped(self) -> None:
        pass

    def close(self) -> None:
        pass
