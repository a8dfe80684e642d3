"""The Raspberry Pi camera through picamera2 (libcamera's Python binding), without GStreamer.

This module owns the only picamera2 import, done lazily when the source opens: picamera2
exists only on Raspberry Pi OS (apt: python3-picamera2; a venv needs
--system-site-packages), so everything else imports and runs without it. A missing
package or camera is a `SourceError` with the fix.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edge.camera.opencv import stamp
from edge.errors import SourceError
from edge.types import Frame

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1280, 720)
DEFAULT_FPS = 30.0


def _import_picamera2() -> Any:
    try:
        from picamera2 import Picamera2  # noqa: PLC0415 - optional, Pi-only dependency
    except ImportError:
        raise SourceError("source.kind is picamera2 but picamera2 is not installed: sudo apt install "
                          "python3-picamera2 and make the venv with --system-site-packages "
                          "(or use source.kind gstreamer with libcamerasrc)") from None
    return Picamera2


class Picamera2Source:
    """Frames from the first CSI camera, delivered as BGR."""

    def __init__(self, width: int = 0, height: int = 0, fps: float = 0.0) -> None:
        picamera2_class = _import_picamera2()
        self.width, self.height = (width, height) if width and height else DEFAULT_SIZE
        self.fps = fps or DEFAULT_FPS
        self.name = "picamera2"
        self._index = 0
        try:
            self._camera = picamera2_class()
            # libcamera's "RGB888" is B,G,R in memory: exactly what OpenCV and the pipeline expect.
            video = self._camera.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"},
                controls={"FrameRate": self.fps}, buffer_count=4)
            self._camera.configure(video)
            self._camera.start()
        except (RuntimeError, IndexError, OSError) as exc:  # no camera: IndexError from the camera list
            raise SourceError(f"cannot start the Pi camera with picamera2: {exc} "
                              "(check the ribbon cable and `rpicam-hello --list-cameras`)") from None

    def read(self) -> Frame | None:
        try:
            image = self._camera.capture_array("main")
        except RuntimeError as exc:
            log.warning("picamera2 capture failed: %s", exc)
            return None  # the reconnecting wrapper reopens a live source that ended
        image_bgr = np.ascontiguousarray(image[:, :, :3])
        frame = stamp(image_bgr, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        try:
            self._camera.stop()
            self._camera.close()
        except RuntimeError as exc:
            log.debug("closing picamera2 failed: %s", exc)
