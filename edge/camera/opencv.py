"""OpenCV-backed sources: video files, V4L2 cameras and GStreamer pipelines.

Every failure to open or decode becomes a `SourceError` naming the input. A video
file can be replayed at its own frame rate (a camera stand-in) or as fast as
possible (offline anonymization). A file's frames carry their decoded timestamps
(`Frame.t_media_ns`, variable frame rate included), so what is stored keeps the
file's own time however fast it is processed; camera frames carry none, their
capture time is their timeline.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge.config import DEFAULT_MAX_PIXELS
from edge.errors import SourceError
from edge.types import Frame

log = logging.getLogger(__name__)

_FALLBACK_FPS = 30.0


def stamp(image_bgr: np.ndarray, index: int) -> Frame:
    """A frame stamped now: monotonic for ordering, UTC for names."""
    return Frame(image_bgr=image_bgr, index=index, t_mono_ns=time.monotonic_ns(),
                 t_utc=dt.datetime.now(dt.timezone.utc))


def check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse a frame size from a header before anything is decoded (a decompression bomb)."""
    if width * height > max_pixels:
        raise SourceError(f"{path}: {width}x{height} is {width * height / 1e6:.0f} million pixels a frame, more than "
                          f"source.max_pixels ({max_pixels / 1e6:g} million); refused before decoding")


class _CaptureSource:
    """Shared reading loop over a cv2.VideoCapture that was opened by a subclass."""

    name: str
    media_clock = False  # True: frames carry the decoded timestamp (files); cameras leave capture time

    def __init__(self, capture: cv2.VideoCapture, description: str) -> None:
        self._capture = capture
        self._index = 0
        self._description = description
        ok, first = capture.read()
        if not ok or first is None or first.size == 0:
            capture.release()
            raise SourceError(f"{description}: no frame could be decoded (empty, corrupt or not a video)")
        self.height, self.width = first.shape[:2]
        reported = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(reported) if reported and np.isfinite(reported) and 0 < reported < 1000 else _FALLBACK_FPS
        self._media_ns: int | None = None  # timestamp of the latest frame decoded
        self._pending: tuple[np.ndarray, int | None] | None = (first, self._decoded_time_ns())

    def _next_image(self) -> tuple[np.ndarray, int | None] | None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return pending
        ok, image = self._capture.read()
        return (image, self._decoded_time_ns()) if ok and image is not None else None

    def _decoded_time_ns(self) -> int | None:
        """The presentation time of the frame just decoded, from the stream's start; None for cameras.

        OpenCV's FFmpeg backend reports the decoded frame's own timestamp (variable frame
        rate included). A stream without timestamps (raw H.264) reports 0 for every frame,
        and a broken one may go backwards: such a frame is put one nominal frame after the last.
        """
        if not self.media_clock:
            return None
        position_ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        media_ns = round(position_ms * 1e6) if np.isfinite(position_ms) and position_ms >= 0 else 0
        if self._media_ns is not None and media_ns <= self._media_ns:
            media_ns = self._media_ns + round(1e9 / self.fps)
        self._media_ns = media_ns
        return media_ns

    def read(self) -> Frame | None:
        pending = self._next_image()
        if pending is None:
            return None
        image, media_ns = pending
        if image.shape[:2] != (self.height, self.width):
            raise SourceError(f"{self._description}: frame size changed mid-stream "
                              f"from {self.width}x{self.height} to {image.shape[1]}x{image.shape[0]}")
        frame = stamp(image, self._index)
        frame.t_media_ns = media_ns
        self._index += 1
        return frame

    @property
    def frames_read(self) -> int:
        return self._index

    def media_time_s(self) -> float:
        """Position of the latest frame read, in seconds of the stream's own timeline."""
        if self._media_ns is not None:
            return self._media_ns / 1e9
        return max(0, self._index - 1) / self.fps

    def close(self) -> None:
        self._capture.release()


class VideoFileSource(_CaptureSource):
    media_clock = True

    def __init__(self, path: Path, realtime: bool, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if not path.is_file():
            raise SourceError(f"input not found: {path}")
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise SourceError(f"cannot open {path}: not a video file OpenCV can decode")
        # The stream's declared size, known once it is opened: refuse a huge frame before decoding one.
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            check_pixels(path, width, height, max_pixels)
        except SourceError:
            capture.release()
            raise
        super().__init__(capture, str(path))
        self.name = path.name
        self.path = path
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.declared_frame_count = count if count > 0 else None
        self._realtime = realtime
        self._start_ns: int | None = None  # (monotonic, media) time of the first frame delivered
        self._start_media_ns = 0

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is None:
            self._warn_if_truncated()
            return None
        if self._realtime:
            self._pace(frame.timeline_ns)
        return frame

    def _pace(self, media_ns: int) -> None:
        """Sleep until this frame's due time on the file's own clock, as a camera would deliver it."""
        now = time.monotonic_ns()
        if self._start_ns is None:
            self._start_ns, self._start_media_ns = now, media_ns
        due = self._start_ns + media_ns - self._start_media_ns
        if due > now:
            time.sleep((due - now) / 1e9)

    def _warn_if_truncated(self) -> None:
        """Compare times, not counts: where a container stores no frame count (Matroska, MPEG-TS, WebM, AVI),
        OpenCV estimates it as duration x nominal rate, which a variable-frame-rate file never reaches."""
        declared = self.declared_frame_count
        if not declared:
            return
        declared_s = declared / self.fps
        reached_s = self.media_time_s() + 1 / self.fps
        # Containers often over- or under-state the length by a frame or two; only warn on a real gap.
        if reached_s < declared_s - max(0.5, 2 / self.fps):
            log.warning("%s ended at %.1f s of the %.1f s its header declares: the file may be truncated or corrupt",
                        self.path, reached_s, declared_s)


class V4L2Source(_CaptureSource):
    def __init__(self, device: str, width: int, height: int, fps: float) -> None:
        target: int | str = int(device) if device.isdigit() else device
        capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not capture.isOpened():
            raise SourceError(f"cannot open camera {device}: missing, busy, or not a V4L2 capture device")
        if width and height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        super().__init__(capture, f"camera {device}")
        self.name = f"v4l2:{device}"


def opencv_has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class GStreamerSource(_CaptureSource):
    def __init__(self, pipeline: str) -> None:
        if not pipeline:
            raise SourceError("source.kind is gstreamer but source.pipeline is empty")
        if not opencv_has_gstreamer():
            raise SourceError("this OpenCV build has no GStreamer support (the PyPI wheels have none); "
                              "use the system OpenCV (Debian: python3-opencv) in a venv made with "
                              "--system-site-packages, or source.kind v4l2")
        capture = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if not capture.isOpened():
            raise SourceError(f"GStreamer pipeline did not start: {pipeline}")
        super().__init__(capture, "GStreamer pipeline")
        self.name = "gstreamer"
